#pragma once
// WorkloadResolver: turns a v1::WorkloadSelector into resolved Workloads on this host, through
// the container runtimes it found (Docker Engine API, Kubernetes CRI) or, for the runtime-free
// handles (netns path, cgroup v2 path, pid), through /proc and /sys alone. Read-only.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/workloads/workload.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::workloads {

class DockerEngineClient;
class CriClient;

// Where each runtime's socket is looked for when no flag names one, in order.
std::vector<std::string> DefaultDockerSockets();  // /run/docker.sock, /run/podman/podman.sock
std::vector<std::string>
DefaultCriSockets();  // /run/containerd/containerd.sock, /run/crio/crio.sock

struct WorkloadResolverOptions {
  // Docker Engine API socket: a path; "" = the first of DefaultDockerSockets() that exists as a
  // socket; "none" = never ask a Docker Engine API.
  std::string docker_socket;
  // CRI socket, same rules with DefaultCriSockets().
  std::string cri_socket;
  // Deadline of every runtime call (one List or Version).
  std::chrono::milliseconds deadline{3000};
  // The agent id, written into every Workload's `host`.
  std::string host;
};

class WorkloadResolver {
 public:
  // Picks the sockets (a stat per default path; no runtime call). Never fails: a runtime with no
  // socket is simply absent.
  explicit WorkloadResolver(WorkloadResolverOptions options);
  ~WorkloadResolver();

  // Runtimes with a socket: "docker"/"cri" -> "unix://PATH <Version() or 'not answering: why'>".
  // Calls each runtime's Version (bounded by the deadline). Thread-safe.
  std::map<std::string, std::string> DescribeRuntimes() const;

  struct Resolution {
    // Sorted by (runtime, id); at most faultspec::kMaxWorkloadsPerAgent.
    std::vector<Workload> workloads;
    // For runtime ANY: runtimes that failed (name -> reason); the others' workloads are kept.
    std::map<std::string, std::string> runtime_errors;
  };

  // Validates `selector` (INVALID_ARGUMENT) and resolves it. Runtime DOCKER or CRI without a
  // socket: FAILED_PRECONDITION naming the flag; that runtime's errors as they are (UNAVAILABLE,
  // DEADLINE_EXCEEDED, ...). ANY: every runtime with a socket (FAILED_PRECONDITION when there is
  // none; the first error when all fail). Handles: NOT_FOUND when the path or pid does not exist,
  // FAILED_PRECONDITION when it is not a netns / a cgroup v2 directory / a cgroup with a process.
  // No match is not an error (empty list). Thread-safe; blocks up to the deadline per runtime.
  Result<Resolution> Resolve(const v1::WorkloadSelector& selector) const;

 private:
  Result<std::vector<Workload>> ResolveHandle(const v1::WorkloadSelector& selector) const;

  WorkloadResolverOptions options_;
  std::string docker_socket_;  // "" = none
  std::string cri_socket_;
  std::unique_ptr<DockerEngineClient> docker_;
  std::unique_ptr<CriClient> cri_;
};

// The pids (at most `max_pids`) whose /proc/PID/ns/net is namespace `id`. Scans /proc.
std::vector<pid_t> PidsInNetns(const NetnsIdentity& id, size_t max_pids = 4096);

// resolver.Resolve(selector) as a ListWorkloads answer (workloads and runtime_errors).
Result<v1::ListWorkloadsResponse> ListWorkloads(const WorkloadResolver& resolver,
                                                const v1::WorkloadSelector& selector);

// `w` as the proto that ListWorkloads, FaultStatus and reports carry.
v1::Workload WorkloadToProto(const Workload& w);

}  // namespace faultline::agent::workloads
