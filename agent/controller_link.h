#pragma once
// ControllerLink: the agent's outbound connection to a faultline-controller. The agent dials out
// (so it works behind NAT and needs no open port), sends a Hello with its identity and
// capabilities, then heartbeats, and executes the commands that come down the stream with the
// same FaultManager its Agent service uses, answering each with its request id. A broken stream
// is redialled with exponential backoff and jitter; faults stay protected by their leases
// meanwhile (a controller that dies never leaves a fault behind).

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/agent_service.h"
#include "agent/apply_executor.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/probe_streams.h"
#include "common/duration.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::agent {

struct ControllerLinkOptions {
  // HOST:PORT of the controller.
  std::string address;
  // mTLS (MakeChannelCredentials) or grpc::InsecureChannelCredentials(); must not be null.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Redial backoff: starts at min, doubles up to max, each wait +-25% jitter so a fleet that
  // lost its controller does not come back in one burst.
  Duration min_backoff = std::chrono::milliseconds(200);
  Duration max_backoff = std::chrono::seconds(5);
};

class ControllerLink {
 public:
  // `manager` and `registry` must outlive the link.
  ControllerLink(FaultManager& manager, const FaultRegistry& registry, AgentIdentity identity,
                 ControllerLinkOptions options);
  // Stop().
  ~ControllerLink();
  ControllerLink(const ControllerLink&) = delete;
  ControllerLink& operator=(const ControllerLink&) = delete;

  // Starts dialling in the background. Idempotent.
  void Start();
  // Closes the stream and joins the thread. Leaves faults as they are. Idempotent.
  void Stop();
  // True while a stream is open and the controller has welcomed this agent.
  bool attached() const { return attached_.load(); }

  // Executes one command with the FaultManager and returns its answer (request id copied).
  // Public so it can be tested without a stream. On the stream, apply commands run on a bounded
  // ApplyExecutor and are answered from there (so a revert or halt command that follows is never
  // stuck behind a slow apply); `on_cancelled` is handed to FaultManager::Apply.
  v1::CommandResult Execute(const v1::ControllerCommand& command,
                            ApplyCancelledFn on_cancelled = nullptr);

  // Waits up to `timeout` until no apply command runs or waits. True when idle. (Shutdown: a
  // still-running one is stuck in a backend, see agent/main.cpp.)
  bool WaitAppliesIdle(std::chrono::milliseconds timeout);

  // Enables probe commands (ProbeStreams::Run; samples go down the stream as ProbeSampleMessages
  // and the end as the command's result; a cancel_probe command or the stream's end stops them)
  // and makes revert_all stop the run's probes too. `streams` must outlive the link. Without it a
  // probe command is answered UNIMPLEMENTED. Call before Start.
  void SetProbeStreams(ProbeStreams* streams) { probe_streams_ = streams; }
  // Enables list_workloads commands (each on a short-lived thread, at most
  // AgentService::kMaxWorkloadListsInFlight at once). Call before Start.
  void SetWorkloadLister(WorkloadLister lister) {
    workload_lister_ = std::make_shared<const WorkloadLister>(std::move(lister));
  }

 private:
  std::unique_ptr<v1::Controller::Stub> Dial() const;
  void Loop();
  // One stream, from dial to its end; returns why it ended.
  grpc::Status RunStream();
  // The open stream's writer, shared with apply workers that may answer after it closed.
  struct StreamWriter;
  // Runs an apply command on executor_ and writes its answer (or its cancellation) to `out`.
  void ExecuteApplyAsync(const v1::ControllerCommand& command, std::shared_ptr<StreamWriter> out);
  // Starts a probe command's stream; false when its refusal could not be written.
  bool StartProbe(const v1::ControllerCommand& command, const std::shared_ptr<StreamWriter>& out,
                  std::map<uint64_t, std::weak_ptr<ProbeStreams::Stream>>& probes);
  // Answers a list_workloads command from a thread of its own.
  void ListWorkloadsAsync(const v1::ControllerCommand& command, std::shared_ptr<StreamWriter> out);

  FaultManager& manager_;
  const FaultRegistry& registry_;
  const AgentIdentity identity_;
  const ControllerLinkOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                             // guarded by mu_
  std::shared_ptr<grpc::ClientContext> context_;  // guarded by mu_; the open stream's
  std::atomic<bool> attached_{false};
  std::thread thread_;
  ProbeStreams* probe_streams_ = nullptr;
  std::shared_ptr<const WorkloadLister> workload_lister_;
  std::shared_ptr<std::atomic<int>> workload_lists_in_flight_ =
      std::make_shared<std::atomic<int>>(0);
  // Declared last: destroyed first, rejecting queued applies before the rest goes away.
  const std::unique_ptr<ApplyExecutor> executor_;
};

}  // namespace faultline::agent
