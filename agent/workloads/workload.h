// A resolved workload: the container, pod or runtime-free handle a fault acts on, as discovery
// on the agent found it (agent/workloads/). Backends take one of these and act inside its network
// namespace without moving the agent; the journal stores its netns identity so a restarted agent
// can check that a path still names the same namespace before reverting inside it.
//
// This header is the contract between discovery (which fills it) and the backends (which only
// read it). Plain data, no I/O; copyable; safe to share across threads once built.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace faultline::agent::workloads {

// What a handle was resolved from.
enum class WorkloadKind {
  kContainer,  // a Docker Engine API container (docker, Podman's compatible socket)
  kPod,        // a Kubernetes pod sandbox found through the CRI (containerd, CRI-O)
  kNetns,      // a runtime-free network namespace path (/run/netns/x, /proc/PID/ns/net)
  kCgroup,     // a runtime-free cgroup v2 directory: its processes and their netns
  kPid,        // a runtime-free process id: its netns
};

// Stable lower-case name of a kind: "container", "pod", "netns", "cgroup", "pid".
inline const char* WorkloadKindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kContainer:
      return "container";
    case WorkloadKind::kPod:
      return "pod";
    case WorkloadKind::kNetns:
      return "netns";
    case WorkloadKind::kCgroup:
      return "cgroup";
    case WorkloadKind::kPid:
      return "pid";
  }
  return "unknown";
}

// Identity of a network namespace: device and inode of its nsfs inode (stat() of
// /proc/PID/ns/net or of a bind mount under /run/netns). Two paths name the same namespace iff
// their identities are equal; a namespace's identity never changes while it exists (an inode
// number may be reused after it is gone, so compare while holding an fd when it matters).
struct NetnsIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;

  // False for a default-constructed identity (nothing resolved).
  bool Valid() const { return ino != 0; }
  bool operator==(const NetnsIdentity&) const = default;
};

// A file-name-safe name of a namespace identity ("netns-<dev>-<ino>"), for state kept per
// namespace (e.g. a backend's records under the agent's state directory).
inline std::string NetnsStateName(const NetnsIdentity& id) {
  return "netns-" + std::to_string(id.dev) + "-" + std::to_string(id.ino);
}

// One resolved workload. Filled by discovery at the moment of resolution; pids and the netns path
// may go stale as the workload restarts or exits (re-resolve by `id` to refresh).
struct Workload {
  WorkloadKind kind = WorkloadKind::kNetns;
  // Which runtime found it: "docker" (Docker Engine API, incl. Podman), "cri"; empty for the
  // runtime-free kinds.
  std::string runtime;
  // Stable identifier: the container id, the pod sandbox id, or the handle itself (netns path,
  // cgroup path, decimal pid) for the runtime-free kinds.
  std::string id;
  // Human name: container name (no leading '/'), pod name, or the handle again.
  std::string name;
  // Kubernetes namespace of a pod (empty otherwise).
  std::string pod_namespace;
  // Runtime labels of the container or pod sandbox (empty for the runtime-free kinds).
  std::map<std::string, std::string> labels;
  // Processes of the workload at resolution time (a container's init pid first; a cgroup's
  // cgroup.procs; a pod's container pids when the runtime reports them). May be empty for a netns
  // handle with no process in it.
  std::vector<pid_t> pids;
  // A path whose open() yields an fd of the workload's network namespace, usable with setns():
  // the runtime's SandboxKey or /run/netns/x, else /proc/<first pid>/ns/net.
  std::string netns_path;
  // Identity of that namespace at resolution time (see NetnsIdentity).
  NetnsIdentity netns;
  // cgroup v2 directory (absolute, below /sys/fs/cgroup) when known; empty otherwise.
  std::string cgroup_path;
  // The host (agent id) that resolved it; filled by the agent for reports.
  std::string host;
};

}  // namespace faultline::agent::workloads
