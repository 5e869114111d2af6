#pragma once
// RunSupervisor: what faultline-controller does, without gRPC. It starts runs (the same
// RunEngine as `faultline run`, talking to agents through a Fleet), tracks and cancels them,
// halts and resumes the fleet, lists the fleet's faults, and serves the run history and the
// schedules from the store. ControllerService (controller_service.h) only adapts its RPCs to it.
//
// Threads: each run, halt and fleet fan-out runs on a thread the supervisor owns (joined at
// destruction). Store calls made for a caller that must not block (an RPC handler) go through
// Post(): a bounded queue served by the supervisor's one store worker thread, so a slow
// SQLite/PostgreSQL call never holds a gRPC handler thread. The blocking methods below
// (StartRun, GetRun, ...) may be called from any thread; the gRPC layer calls them from a
// posted task.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "controller/access/audit.h"
#include "controller/access/principal.h"
#include "controller/access/team_policy.h"
#include "controller/daemon/run_observer.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/inventory.h"
#include "controller/engine/run_engine.h"
#include "controller/schedule/schedule_service.h"
#include "controller/store/run_store.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::daemon {

// The agents a supervisor commands. AgentRegistry provides it in the daemon (RegistryFleet in
// controller_service.cpp); tests give a fake. Every method must be thread-safe.
class Fleet {
 public:
  virtual ~Fleet() = default;
  // Live agents as engine endpoints (name = agent id).
  virtual engine::Inventory LiveInventory() = 0;
  // An engine connection to `endpoint` (one of LiveInventory's).
  virtual std::shared_ptr<engine::AgentConnection> Connect(
      const engine::AgentEndpoint& endpoint) = 0;
  // Ids of the live agents, sorted.
  virtual std::vector<std::string> LiveAgentIds() = 0;
  // Sends `command` to every agent of `ids` at once and waits for every answer or `deadline`;
  // results in `ids` order (UNAVAILABLE for an agent whose stream broke).
  virtual std::vector<Result<v1::CommandResult>> Broadcast(const std::vector<std::string>& ids,
                                                           const v1::ControllerCommand& command,
                                                           Duration deadline) = 0;
  // Whether `id` is live (waiting at most `timeout`).
  virtual bool AwaitLive(const std::string& id, Duration timeout) = 0;
};

struct RunSupervisorOptions {
  // Per-agent deadline of one fan-out command (halt, fault list).
  Duration fanout_deadline = std::chrono::seconds(5);
  // Lease of run faults when the request does not say.
  Duration default_lease_ttl = std::chrono::seconds(15);
  // Per-call deadline the engine uses towards agents.
  Duration rpc_deadline = std::chrono::seconds(5);
  // Shared run history; may be null (history of this process only). Must outlive the
  // supervisor. At construction every run this controller (`controller_id`) left `running` is
  // marked interrupted.
  store::RunStore* store = nullptr;
  std::string controller_id = "faultline-controller";
  // Called with every finished run's result, on the run's thread, before it is recorded. May be
  // empty. Must be thread-safe.
  std::function<void(const engine::RunResult&)> on_run_finished;
  // Programs a command probe may run on this host (probes::CheckCommandProbesAllowed); empty:
  // every experiment with a `from: controller` command probe is refused.
  std::vector<std::string> command_probe_allowlist;
  // Tasks Post() holds at most (queued, not yet running); more are refused.
  size_t max_queued = 256;
  // Told about every run and halt as it happens (the console); may be null. Must outlive the
  // supervisor.
  RunObserver* observer = nullptr;
  // The team policy (--policy); null or no policy loaded: no team rules. Must outlive the
  // supervisor.
  access::PolicyFile* policy = nullptr;
  // Where run submissions and their refusals are audited; null: a log-only audit of its own.
  access::AuditLog* audit = nullptr;
};

// One run to start (SubmitRun, or a schedule's due time).
struct RunRequest {
  std::string experiment_yaml;
  std::string file_name;  // for error messages; empty: "<submitted>"
  Duration lease_ttl{};   // lease of every fault; zero: RunSupervisorOptions::default_lease_ttl
  std::string source = "controller";  // recorded in the store: "controller", "schedule:<name>"
  // Who submits it (gRPC SubmitRun, the console). Set: the team policy applies and the
  // submission is audited. Unset: an internal start (a schedule's firing), no team rules.
  std::optional<access::Principal> principal;
  // Both may be empty. Called on the run's thread.
  std::function<void(const engine::ProgressEvent&)> on_progress;
  std::function<void(v1::RunSummary)> on_finished;
};

// What a halt did.
struct HaltOutcome {
  uint32_t agents = 0;
  uint32_t faults_reverted = 0;
  uint32_t runs_cancelled = 0;
  std::vector<std::pair<std::string, std::string>> failed;  // agent id, error
  Duration elapsed{};
};

class RunSupervisor {
 public:
  // `fleet` must outlive the supervisor. Starts the store worker.
  RunSupervisor(Fleet& fleet, RunSupervisorOptions options);
  // Refuses new work, cancels every run (faults reverted), runs what Post() had queued, and
  // joins every thread.
  ~RunSupervisor();
  RunSupervisor(const RunSupervisor&) = delete;
  RunSupervisor& operator=(const RunSupervisor&) = delete;

  // Queues `task` for the store worker (FIFO, one at a time). UNAVAILABLE once stopping,
  // RESOURCE_EXHAUSTED when max_queued tasks wait already; then `task` is not run. A queued task
  // always runs, even during destruction (a task that finishes an RPC must run). Never blocks.
  Status Post(std::function<void()> task);
  // Blocks until at least `count` tasks wait in Post()'s queue (not counting the one running) or
  // `timeout` passes; true when they do. For tests and tools.
  bool AwaitQueued(size_t count, Duration timeout);
  // Runs `work` on a thread of its own (joined at destruction); UNAVAILABLE once stopping.
  Status Spawn(std::function<void()> work);

  // Starts a run on its own thread and returns its id once it is registered (and, with a
  // store, recorded as running with owner controller_id — what the Scheduler's launcher must
  // guarantee). FAILED_PRECONDITION while halted; INVALID_ARGUMENT for an invalid experiment
  // (every error as file:line:column, nothing applied); PERMISSION_DENIED naming the rule when
  // the team policy refuses request.principal (nothing applied; audited); UNAVAILABLE while
  // stopping. Blocks on the store.
  Result<std::string> StartRun(RunRequest request);
  // Cancels a run of this process (verdict ABORTED, faults reverted); false when not active.
  bool CancelRun(const std::string& run_id, const std::string& reason);
  // The engine of an active run of this process (to cancel it later, even after the supervisor
  // is gone); null when not active.
  std::shared_ptr<engine::RunEngine> ActiveRun(const std::string& run_id);

  // Refuses new runs until ResumeAll, cancels every run and sends revert-all to every live
  // agent at once, retrying agents whose stream broke while fanout_deadline lasts; then records
  // the halt in the store (if any) for the other controllers on it. Blocking; idempotent.
  HaltOutcome HaltAll(const std::string& reason);
  // Lifts a halt, here and in the store; returns whether one was in force (here or there).
  bool ResumeAll();
  bool halted() const { return halted_.load(); }
  // Follows the store's halt (given to another controller on it): halts here when it was
  // recorded and resumes when it was lifted, since the last call (the first call compares with
  // "not halted"). A halt given here whose store write failed is kept. Call from one thread.
  // No-op without a store.
  void SyncHaltWithStore();

  // Every live agent's faults (include_reverted: reverted ones too); agents that did not answer
  // are listed in `unreachable`. Blocking (fanout_deadline).
  v1::ListFleetFaultsResponse FleetFaults(bool include_reverted);

  // History. GetRun: this process's run (with its text report) merged with the store's record
  // and annotations; NOT_FOUND when neither knows it. ListRuns: newest first, without reports.
  Result<v1::RunSummary> GetRun(const std::string& run_id);
  Result<v1::ListRunsResponse> ListRuns(const std::string& experiment, uint32_t limit);
  // INVALID_ARGUMENT (empty run id or text, text > 4096 or author > 256 bytes);
  // FAILED_PRECONDITION without a store; NOT_FOUND for an unknown run. `author` empty: `caller`.
  Result<v1::RunAnnotation> AnnotateRun(const std::string& run_id, const std::string& author,
                                        const std::string& text, const std::string& caller);

  // Schedules (FAILED_PRECONDITION without a store). AddSchedule also checks that the
  // experiment parses (INVALID_ARGUMENT with every error). `caller` is for the log only.
  Status AddSchedule(const v1::Schedule& schedule, const std::string& caller);
  Result<std::vector<store::Schedule>> ListSchedules();
  Status RemoveSchedule(const std::string& name, const std::string& caller);
  Status PauseSchedule(const std::string& name, bool paused);
  Result<std::vector<store::Firing>> ListFirings(const std::string& name, uint32_t limit);

 private:
  void WorkerLoop();
  void RecordRun(const v1::RunSummary& summary);
  HaltOutcome HaltHere(const std::string& reason);
  Status NeedStore(const char* action) const;

  Fleet& fleet_;
  const RunSupervisorOptions options_;
  std::unique_ptr<access::AuditLog> own_audit_;  // when options_.audit is null
  access::AuditLog* audit_;
  std::atomic<bool> halted_{false};
  std::unique_ptr<schedule::ScheduleService> schedules_;  // null without a store
  // The store's halt as this controller last saw or wrote it: SyncHaltWithStore acts on changes
  // only. Reading the store and acting, or writing it and noting so, happen under halt_mu_.
  std::mutex halt_mu_;
  bool store_halt_seen_ = false;  // guarded by halt_mu_

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<engine::RunEngine>> active_runs_;  // guarded by mu_
  std::map<std::string, v1::RunSummary> runs_;  // guarded by mu_; history of this process
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> threads_;  // guarded by mu_
  bool stopping_ = false;        // guarded by mu_

  // The store worker's queue.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::function<void()>> queue_;  // guarded by queue_mu_
  bool queue_closed_ = false;                // guarded by queue_mu_
  std::thread store_worker_;
};

}  // namespace faultline::daemon
