#pragma once
// Reading processes from /proc and signalling one exactly: a process is named by its pid *and*
// its start time (/proc/<pid>/stat field 22, clock ticks since boot), so a pid the kernel has
// handed to a new process since it was selected is never signalled.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace faultline::agent::process {

// One process as /proc/<pid>/stat shows it.
struct ProcessInfo {
  int pid = 0;
  uint64_t start_time = 0;     // field 22: together with pid, the process's identity
  bool kernel_thread = false;  // PF_KTHREAD in the flags (field 9)
  char state = '?';            // field 3: R, S, D, T (stopped), t, Z, ...
  std::string comm;            // field 2 without the parentheses (at most 15 characters)
};

// Identity of a namespace (st_dev, st_ino of /proc/<pid>/ns/<kind>).
struct NamespaceId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool operator==(const NamespaceId&) const = default;
};

// Parses the text of /proc/<pid>/stat. INVALID_ARGUMENT when it is malformed.
Result<ProcessInfo> ParseProcStat(const std::string& text);

// Reads /proc/<pid>/stat. NOT_FOUND when the process does not exist (any more).
Result<ProcessInfo> ReadProcess(int pid);

// Every process (thread-group leader) in /proc, in pid order. Processes that exit while the
// list is read are skipped.
std::vector<ProcessInfo> ListProcesses();

// Basename of /proc/<pid>/exe (" (deleted)" stripped: the binary was replaced on disk); empty
// when unreadable (kernel threads, zombies, a process that exited).
std::string ExeBasename(int pid);

// The cgroup v2 path of the process ("/system.slice/x.service"), from the "0::" line of
// /proc/<pid>/cgroup; nullopt when unreadable.
std::optional<std::string> CgroupV2PathOf(int pid);

// The network namespace of the process; nullopt when unreadable. pid 0 = this process.
std::optional<NamespaceId> NetNamespaceOf(int pid);

// Sends `signal` to the process `pid` only if it still has `start_time`: a pidfd is opened first
// and the start time checked after, so the signal cannot reach a process that reused the pid.
// OK when sent; NOT_FOUND when the process is gone or the pid was reused; PERMISSION_DENIED or
// INTERNAL otherwise. Idempotence is the caller's (a second SIGCONT is harmless, a second
// SIGKILL finds NOT_FOUND).
Status SignalExactly(int pid, uint64_t start_time, int signal);

}  // namespace faultline::agent::process
