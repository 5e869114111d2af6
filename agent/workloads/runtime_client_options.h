#pragma once
// RuntimeClientOptions: how a container-runtime client (DockerEngineClient, CriClient) reaches
// its runtime and the bounds it keeps on the runtime's answers. Plain data.

#include <chrono>
#include <cstddef>
#include <string>

namespace faultline::agent::workloads {

struct RuntimeClientOptions {
  // The runtime's unix socket, e.g. /run/podman/podman.sock, /run/containerd/containerd.sock.
  std::string socket_path;
  // Deadline of one whole List or Version call (every request inside it shares what is left).
  std::chrono::milliseconds deadline{3000};
  // Largest answer accepted from the runtime (an HTTP body, a gRPC message); a longer one fails
  // the call.
  size_t max_response_bytes = 4 << 20;
  // At most this many workloads (containers, pod sandboxes) are resolved per List; more matches
  // fail it with RESOURCE_EXHAUSTED.
  size_t max_workloads = 256;
};

}  // namespace faultline::agent::workloads
