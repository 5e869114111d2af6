#pragma once
// ProbeStreams: the agent's side of the Probe RPC (agent-side probes, `from: <target>`).
//
// Each call is validated field by field (common/probes/probe_request.h, with this agent's own
// list of command programs), then runs the probe on this host open-loop (OpenLoopSampler: the
// same schedule and in-flight bound as the controller's probes) and streams every sample back
// with the agent's monotonic send and answer instants. The stream ends OK after the request's
// duration; it stops sending at once when the caller cancels (the run ended or was aborted) or
// on CancelAll (a halt: RevertAll), and then ends ABORTED without waiting for samples in flight
// (those finish in the background, each bounded by the probe's timeout).
//
// Threading: Start is called on gRPC callback threads; CancelAll and Active from any thread. Each
// stream runs its probe on its own threads, never on a callback thread.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

struct ProbeStreamOptions {
  // Absolute paths of the programs a command probe may run (--allow-probe-command); empty: none.
  std::vector<std::string> allowed_commands;
  // Streams at once; more are answered RESOURCE_EXHAUSTED.
  int max_streams = 32;
};

class ProbeStreams {
 public:
  explicit ProbeStreams(ProbeStreamOptions options);
  // CancelAll, then waits until every stream's probe threads have ended (each bounded by its
  // probe's timeout).
  ~ProbeStreams();
  ProbeStreams(const ProbeStreams&) = delete;
  ProbeStreams& operator=(const ProbeStreams&) = delete;

  // The reactor serving one Probe call (already finished with INVALID_ARGUMENT,
  // PERMISSION_DENIED or RESOURCE_EXHAUSTED when the request is refused). `request` is read
  // here only.
  grpc::ServerWriteReactor<v1::ProbeSample>* Start(grpc::CallbackServerContext* ctx,
                                                   const v1::ProbeRequest& request);
  // Stops every running stream of run `run_id` (every stream when empty) now (ABORTED "halt").
  // Idempotent.
  void CancelAll(const std::string& run_id = "");
  // Streams whose probe still runs.
  int Active() const;
  // Waits up to `timeout` until no stream's probe runs. True when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);

  struct Stream;

 private:
  const ProbeStreamOptions options_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::weak_ptr<Stream>> streams_;  // guarded by mu_
  int active_ = 0;                              // guarded by mu_
};

// A write reactor that has already finished with `status` (for refusals). Deletes itself.
grpc::ServerWriteReactor<v1::ProbeSample>* FinishedProbeStream(const grpc::Status& status);

}  // namespace faultline::agent
