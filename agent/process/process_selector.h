#pragma once
// Which processes a ProcessFault applies to (its spec is validated by common/faultspec before
// anything is read or signalled): selection by name, pidfile or cgroup, and the guard that keeps
// pid 1, the agent itself, kernel threads and (when the agent is confined to a network
// namespace) processes of other namespaces out of every selection.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "agent/host/host_call.h"
#include "agent/process/proc_reader.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::process {

// The signal names a KILL fault may send, and their numbers. NOT_FOUND for others.
Result<int> SignalNumber(const std::string& name);

// "system.slice/x.service" from "/system.slice/x.service/". Precondition: validated.
std::string NormalizedCgroup(const std::string& cgroup);

// The processes no fault may touch, by name: init, the agents and controllers of Faultline,
// sshd, journald, and the container runtime (containerd and its shims, dockerd, podman, conmon,
// runc, crun, crio). A name matches a process's comm (the kernel cuts it to 15 characters) or the
// base name of its executable.
const std::vector<std::string>& DefaultProtectedProcessNames();

// What a selection may never include.
struct SelectionScope {
  int self_pid = 0;  // the agent
  // Set: only processes in this network namespace are eligible (the agent runs in a namespace
  // of its own, e.g. a sandbox host). Unset: every process on the machine.
  std::optional<NamespaceId> net_namespace;
  // Processes never eligible, by name (the defaults plus the agent's --protect-process).
  std::vector<std::string> protected_names = DefaultProtectedProcessNames();
};

// Whether `name` (a name selector, or a process's comm or executable name) is protected.
bool IsProtectedName(const std::string& name, const SelectionScope& scope);

// The scope for this agent: its own pid, and its network namespace when that differs from
// pid 1's or is a named namespace (a bind mount in `named_netns_dir`, as `ip netns add` makes):
// an agent started with `ip netns exec` stands for that namespace's host.
SelectionScope ScopeForThisAgent(const std::string& named_netns_dir = "/run/netns");

// Whether the scope lets the process be signalled: not pid 1, not the agent, not a kernel
// thread, not a zombie, not protected (comm or executable name), and in the scope's network
// namespace if it has one.
bool IsEligible(const ProcessInfo& info, const SelectionScope& scope);

// Every eligible process the selector matches, in pid order. A pidfile that is missing, empty
// or names a process that does not exist selects nothing (NOT_FOUND only when `strict`, with
// the reason; the apply path is strict, the restart watcher is not). A pidfile that is not a
// regular file (a FIFO, a terminal such as /dev/ptmx, a directory, a symbolic link) is never
// opened for a blocking read: FAILED_PRECONDITION when strict, nothing selected otherwise, at once.
// A name selector naming a protected process selects nothing (FAILED_PRECONDITION saying so when
// `strict`).
// Precondition: validated.
Result<std::vector<ProcessInfo>> SelectProcesses(const v1::ProcessFault& fault,
                                                 const SelectionScope& scope, bool strict);

// How long one selection (a scan of /proc, or a pidfile and the process it names) may take
// before its caller gets DEADLINE_EXCEEDED. A scan takes milliseconds; a /proc file of a process
// stuck in the kernel (D state) can block its reader indefinitely.
inline constexpr std::chrono::milliseconds kProcScanDeadline{5000};

// SelectProcesses on a `pool` worker, waiting at most `deadline`: its result, or
// DEADLINE_EXCEEDED naming the selector when /proc did not answer in time (the scan goes on in
// the background and its result is discarded), or RESOURCE_EXHAUSTED at once when every worker is
// held by an earlier stuck scan. Thread-safe.
Result<std::vector<ProcessInfo>> SelectProcessesWithin(const v1::ProcessFault& fault,
                                                       const SelectionScope& scope, bool strict,
                                                       host::HostCallPool& pool,
                                                       std::chrono::milliseconds deadline);

// Every process (eligible or not) in the cgroup subtree; used to decide whether freezing the
// whole cgroup would touch only what the fault may touch.
std::vector<ProcessInfo> ProcessesInCgroup(const std::string& normalized_cgroup);
// The same on a `pool` worker, waiting at most `deadline` (errors as SelectProcessesWithin).
Result<std::vector<ProcessInfo>> ProcessesInCgroupWithin(const std::string& normalized_cgroup,
                                                         host::HostCallPool& pool,
                                                         std::chrono::milliseconds deadline);

// The subset a fault applies to: all of `matching` unless count (min(count, n)) or percent
// (ceil(n * percent / 100), at least 1) is set; chosen at random, returned in pid order.
std::vector<ProcessInfo> ChooseSubset(std::vector<ProcessInfo> matching,
                                      const v1::ProcessFault& fault);

// "name 'x'", "pidfile '/run/x.pid'", "cgroup 'a/b'": for messages and logs.
std::string DescribeSelector(const v1::ProcessFault& fault);

}  // namespace faultline::agent::process
