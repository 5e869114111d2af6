#pragma once
// CriClient: workload discovery through the Kubernetes CRI (runtime.v1 RuntimeService, the subset
// in cri_api/runtime_v1.proto) over the runtime's unix socket: containerd, CRI-O. Read-only: it
// lists pod sandboxes and reads their status, never changes them.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/workloads/runtime_client_options.h"
#include "agent/workloads/workload.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace grpc {
class Channel;
}

namespace faultline::agent::workloads {

// The socket, deadline and bounds of this client (RuntimeClientOptions, shared by every runtime).
using CriClientOptions = RuntimeClientOptions;

class CriClient {
 public:
  explicit CriClient(CriClientOptions options);
  ~CriClient();

  // RuntimeService/Version: "<runtime_name> <runtime_version>" ("containerd v1.6.20").
  // UNAVAILABLE when nothing answers, DEADLINE_EXCEEDED, or the runtime's status (e.g.
  // UNIMPLEMENTED when the runtime has no CRI plugin).
  Result<std::string> Version() const;

  // READY pod sandboxes matching the runtime form of `selector` (labels by the runtime's
  // label_selector; names, ids and pod_namespace compared here), each with
  // PodSandboxStatus(verbose): its network namespace path (runtimeSpec.linux.namespaces of the
  // verbose info), the sandbox pid, the pod's cgroup pids, and the netns identity. A pod whose
  // namespace cannot be found is skipped with no error only when it stopped meanwhile; otherwise
  // FAILED_PRECONDITION naming it. Precondition: selector validated. Thread-safe.
  Result<std::vector<Workload>> List(const v1::WorkloadSelector& selector) const;

 private:
  CriClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Reads the verbose PodSandboxStatus info JSON (containerd, CRI-O: {"pid": N, "runtimeSpec":
// {"linux": {"namespaces": [{"type": "network", "path": P}]}}}) into `pid` and `netns_path`
// (either may stay empty/0). Pure; exposed for tests.
void ParseCriSandboxInfo(const std::string& info_json, pid_t* pid, std::string* netns_path);

}  // namespace faultline::agent::workloads
