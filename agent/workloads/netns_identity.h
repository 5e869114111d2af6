#pragma once
// Reading the identity and processes of namespaces and cgroups from /proc and /sys (no runtime).

#include <sys/types.h>

#include <string>
#include <vector>

#include "agent/workloads/workload.h"
#include "common/status.h"

namespace faultline::agent::workloads {

// stat() of `path` (a netns bind mount or /proc/PID/ns/net): its nsfs identity. NOT_FOUND when
// the path does not exist; FAILED_PRECONDITION when it is not a network namespace (checked with
// the NS_GET_NSTYPE ioctl on an O_RDONLY fd). Thread-safe.
Result<NetnsIdentity> StatNetns(const std::string& path);

// The cgroup v2 directory of `pid` ("/sys/fs/cgroup/<path from the 0:: line of /proc/PID/cgroup>"),
// or NOT_FOUND when the process is gone or has no cgroup v2 entry.
Result<std::string> CgroupOfPid(pid_t pid);

// The pids listed in `cgroup_dir`/cgroup.procs and in every descendant's (depth at most 16, at
// most `max_pids`), in file order. NOT_FOUND when the directory has no cgroup.procs.
Result<std::vector<pid_t>> PidsOfCgroup(const std::string& cgroup_dir, size_t max_pids = 4096);

}  // namespace faultline::agent::workloads
