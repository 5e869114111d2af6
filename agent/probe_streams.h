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
// The same streams run for a controller's probe command (agent/controller_link.h): Run sends the
// samples to any ProbeSink, and Stop ends one stream.
//
// A request with a `workload` selector runs inside that workload: the agent resolves the selector
// with its own discovery (ProbeStreamOptions::list_workloads; exactly one workload must match),
// opens a host::NetnsThread on the workload's netns (checked against the resolved identity) and
// starts the sampler from that thread, so every sample's socket is the workload's (a thread
// inherits its creator's network namespace). A dns probe without a server reads the workload's own
// resolv.conf (/proc/PID/root/etc/resolv.conf of its first process); names in other probes are
// resolved with the agent's resolv.conf, sent from inside the workload. A refusal there (no such
// workload, discovery off) ends the stream before its `started` message.
//
// Threading: Start and Run are called on gRPC callback threads; CancelAll, Stop and Active from
// any thread. Each stream runs its probe on its own threads, never on a callback thread.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/workloads/workload.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

// The workloads on this host that a (validated) selector matches: the agent's discovery
// (workloads::WorkloadResolver::Resolve). Blocking, bounded by the runtimes' deadlines.
using ProbeWorkloadLister =
    std::function<Result<std::vector<workloads::Workload>>(const v1::WorkloadSelector&)>;

struct ProbeStreamOptions {
  // Absolute paths of the programs a command probe may run (--allow-probe-command); empty: none.
  std::vector<std::string> allowed_commands;
  // Streams at once; more are answered RESOURCE_EXHAUSTED.
  int max_streams = 32;
  // Resolves a probe's `workload`; empty: such a probe ends FAILED_PRECONDITION.
  ProbeWorkloadLister list_workloads;
};

// Where one stream's messages go: the Probe RPC's writer, or a controller command's answers.
class ProbeSink {
 public:
  virtual ~ProbeSink() = default;
  // Sends (or queues, bounded) one message; ignored once closed. Any thread; must not block
  // for long (it is called from the probe's sampler threads).
  virtual void Send(v1::ProbeSample sample) = 0;
  // Ends the stream with `status`: queued messages are still sent unless `drop`. Called once.
  virtual void Close(const Status& status, bool drop) = 0;
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

  struct Stream;
  // Validates `request` and starts its stream, sending to `sink` (which then gets exactly one
  // Close). A refusal (INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED) is returned and
  // `sink` is never used. The handle is for Stop.
  Result<std::shared_ptr<Stream>> Run(const v1::ProbeRequest& request,
                                      std::shared_ptr<ProbeSink> sink);
  // Stops one stream now (it ends ABORTED "probe stopped: `why`"). Idempotent; any thread.
  static void Stop(Stream& stream, const std::string& why);
  // Stops every running stream of run `run_id` (every stream when empty) now (ABORTED "halt").
  // Idempotent.
  void CancelAll(const std::string& run_id = "");
  // Streams whose probe still runs.
  int Active() const;
  // Waits up to `timeout` until no stream's probe runs. True when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);

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
