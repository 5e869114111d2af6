#pragma once
// DockerEngineClient: workload discovery through the Docker Engine API (API version 1.41) over a
// unix socket: docker's /run/docker.sock and Podman's compatible socket. Read-only: it lists and
// inspects containers, never changes them.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "agent/workloads/runtime_client_options.h"
#include "agent/workloads/workload.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::workloads {

// The socket, deadline and bounds of this client (RuntimeClientOptions, shared by every runtime).
using DockerClientOptions = RuntimeClientOptions;

class DockerEngineClient {
 public:
  explicit DockerEngineClient(DockerClientOptions options);

  // GET /_ping: the engine's Server header, e.g. "Libpod/4.3.1 (linux)" (Podman) or
  // "Docker/24.0.5 (linux)". UNAVAILABLE when nothing answers on the socket, DEADLINE_EXCEEDED.
  Result<std::string> Version() const;

  // The running containers matching the runtime form of `selector` (labels all equal, names any,
  // ids exact), each inspected: id, name, labels, State.Pid (first pid), cgroup.procs (the other
  // pids), SandboxKey or /proc/PID/ns/net as netns path, and its identity. Containers whose
  // process is gone between list and inspect are skipped. Precondition: selector validated
  // (faultspec::ValidateWorkloadSelector). Errors: UNAVAILABLE (socket), DEADLINE_EXCEEDED,
  // RESOURCE_EXHAUSTED (bounds), INTERNAL (an answer that is not the API's JSON). Thread-safe.
  Result<std::vector<Workload>> List(const v1::WorkloadSelector& selector) const;

 private:
  // GET `path` (starting with '/'), body of a 200 answer; `deadline` is absolute (steady clock).
  // `server`, when given, receives the Server header.
  Result<std::string> Get(const std::string& path, std::chrono::steady_clock::time_point deadline,
                          std::string* server = nullptr) const;

  DockerClientOptions options_;
};

}  // namespace faultline::agent::workloads
