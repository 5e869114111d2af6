#pragma once
// RunEngine: runs one experiment directly against agents (direct mode, no controller daemon).
//
// Phases: resolve targets → check agents (reachable, capable) → start probes → steady state →
// apply on every target (each ack recorded) → observe → revert → observe after revert →
// verdict. Whatever happens after the first apply (abort condition, cancel, max_duration, an
// agent error), every applied fault is reverted before Run returns; leases cover the case where
// this process dies.

#include <grpcpp/security/credentials.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/fan_out.h"
#include "controller/engine/inventory.h"
#include "controller/engine/recovery_meter.h"
#include "controller/engine/verdict.h"
#include "controller/engine/workload_selection.h"
#include "controller/experiment/experiment.h"
#include "controller/probes/alert_watch.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::engine {

// Partition between target groups: adds the addresses of the agents chosen for `peer_targets`
// (from `targets`, target → agent names) to `match` — IP addresses (the host part of the
// inventory address) as cidrs, names as hosts the agent re-resolves — skipping duplicates.
void AddPartitionPeers(const std::vector<std::string>& peer_targets,
                       const std::map<std::string, std::vector<std::string>>& targets,
                       const Inventory& inventory, v1::NetworkSelector* match);

struct RunResult {
  std::string experiment;
  std::string run_id;
  Verdict verdict = Verdict::kError;
  std::string reason;  // one line: why this verdict
  int64_t started_unix_ms = 0;
  int64_t ended_unix_ms = 0;
  MonoTime started{};  // monotonic origin of the run; report offsets are from here
  std::optional<MonoTime> t_inject_first;  // first apply ack
  std::optional<MonoTime> t_inject;        // last apply ack: the fault is in effect everywhere
  std::optional<MonoTime> t_revert_start;  // revert began
  std::optional<MonoTime> t_revert;        // last revert ack
  MonoTime ended{};
  std::map<std::string, std::vector<std::string>> targets;  // target → agent names
  // target → the workloads picked (targets with `workloads:` only), across its agents.
  std::map<std::string, std::vector<WorkloadTarget>> workload_targets;
  std::vector<FaultOnAgent> faults;
  std::vector<ProbeRecord> probes;
  std::vector<ObjectiveResult> objectives;
  std::vector<std::string> warnings;
};

// What the engine tells the terminal as it goes.
struct ProgressEvent {
  MonoTime at{};
  std::string phase;  // "targets", "steady", "inject", "observe", "revert", "after", "verdict"
  std::string message;
  // The fault on one agent this event is about (its apply or revert ack, or failure); null
  // otherwise. Valid only during the callback.
  const FaultOnAgent* fault = nullptr;
};

struct RunOptions {
  std::string run_id;  // empty: a new one
  Duration lease_ttl = std::chrono::seconds(15);
  // Deadline of each call to an agent.
  Duration rpc_deadline = std::chrono::seconds(5);
  // Attempts per agent call: a call that got no answer (lost ack, broken connection) is sent
  // again with the same fault id, which the agent applies once (FanOut in fan_out.h).
  int rpc_attempts = 3;
  // Agent calls outstanding at once when one phase (check, apply, renew, revert) fans out.
  size_t max_in_flight = 256;
  std::function<void(const ProgressEvent&)> on_progress;  // called from the engine's thread
  // Called with every probe sample as it is taken (for live status on a terminal), from that
  // probe's own thread: concurrent calls for different probes are possible. Must not block.
  std::function<void(const std::string& probe, const ProbeSample&)> on_sample;
  Clock* clock = &SystemClock::Instance();
  // How to reach the agents: `connect` when set (the controller daemon: agents attached to it),
  // otherwise direct gRPC (AgentClient) with agent_credentials, which must then not be null.
  AgentConnector connect;
  std::shared_ptr<grpc::ChannelCredentials> agent_credentials;
};

class RunEngine {
 public:
  RunEngine(const experiment::Experiment& experiment, Inventory inventory, RunOptions options);
  ~RunEngine();

  // Runs the experiment to the end. Blocking. Thread-safe with respect to Cancel().
  RunResult Run();

  // Asks a running Run() to stop: faults are reverted and the verdict is ABORTED. Idempotent;
  // safe from any thread (call it from a signal-handling thread, not from a signal handler).
  void Cancel(const std::string& why);

 private:
  using ProbeSet = probes::ProbeSet;
  struct RunState;

  void Progress(const std::string& phase, const std::string& message,
                const FaultOnAgent* fault = nullptr);
  bool ResolveTargets(RunResult& r);
  bool CheckAgents(RunResult& r);
  // Targets with `workloads:`: asks each of their agents (ListWorkloads), then applies `mode`
  // across every workload found. False (r.reason set, nothing applied) when an agent fails or no
  // workload matches.
  bool ResolveWorkloads(RunResult& r);
  bool AwaitSteadyState(ProbeSet& probes, RunResult& r);
  bool ApplyAll(RunResult& r);
  FanOutOptions FanOutFor(int attempts) const;
  void Observe(ProbeSet& probes, RunResult& r);
  // Reverts every applied fault not yet reverted (only those named `only_fault` when given).
  void RevertAll(RunResult& r, const std::string& why, const std::string& only_fault = "");
  void ObserveAfterRevert(ProbeSet& probes, RunResult& r);
  void RenewLeases(RunResult& r);
  // Measures and decides (verdict.h) once observation is over; sets the run's verdict.
  void ComputeVerdict(RunResult& r, bool aborted, const std::string& abort_reason);
  // Sleeps until `until` or Cancel(); returns false when cancelled.
  bool WaitUntil(MonoTime until);
  bool Cancelled() const { return cancelled_.load(); }
  std::optional<std::string> AbortTriggered(ProbeSet& probes, MonoTime now);

  const experiment::Experiment& exp_;
  Inventory inventory_;
  RunOptions options_;
  Clock& clock_;
  std::atomic<bool> cancelled_{false};
  std::string cancel_reason_;
  std::mutex mu_;
  std::condition_variable cv_;
  MonoTime deadline_{};                              // max_duration
  std::unique_ptr<probes::AlertWatch> alert_watch_;  // the run's prometheus_alert conditions
  std::unique_ptr<RunState> state_;
};

}  // namespace faultline::engine
