#pragma once
// ControllerService: the Controller gRPC service (controller.proto, callback API) of
// faultline-controller. Agents Attach (AgentRegistry); operators submit runs (the same RunEngine
// as `faultline run`, talking to agents over their Attach streams), list agents and the fleet's
// active faults, halt everything and resume.
//
// Authorization by certificate role (common/certificates.h): Attach needs role agent, every
// other RPC role operator; anything else is PERMISSION_DENIED. Under AccessPolicy kPlaintext
// (--insecure on loopback or the sandbox) there is no identity and every caller is allowed.
// Blocking work (runs, fan-outs) happens on the service's own threads, never in a handler; the
// store's calls (history, schedules) are short and made in the handler.
//
// With a store, the service also serves the shared history (GetRun/ListRuns/AnnotateRun) and
// the schedules (AddSchedule...ListFirings); ScheduleLoop (schedule_loop.h) fires them through
// StartRun, and a halt is recorded in the store for every controller on it.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/duration.h"
#include "controller/daemon/agent_registry.h"
#include "controller/engine/run_engine.h"
#include "controller/schedule/schedule_service.h"
#include "controller/store/run_store.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::daemon {

struct ControllerServiceOptions {
  // false: check certificate roles (see the top); true: plaintext, everyone allowed.
  bool plaintext_allow_all = false;
  // Per-agent deadline of one fan-out command (halt, fault list).
  Duration fanout_deadline = std::chrono::seconds(5);
  // Lease of run faults when the request does not say.
  Duration default_lease_ttl = std::chrono::seconds(15);
  // Per-call deadline the engine uses towards agents.
  Duration rpc_deadline = std::chrono::seconds(5);
  // Shared run history (controller/store/run_store.h); may be null (history of this process
  // only). Must outlive the service. At construction every run this controller (`controller_id`)
  // left `running` (it was killed mid-run) is marked interrupted.
  store::RunStore* store = nullptr;
  std::string controller_id = "faultline-controller";
  // Called with every finished run's result (e.g. to update Prometheus run metrics), on the run's
  // thread, before the result is recorded. May be empty. Must be thread-safe.
  std::function<void(const engine::RunResult&)> on_run_finished;
  // Programs a command probe may run on this host (probes::CheckCommandProbesAllowed); empty:
  // every experiment with a `from: controller` command probe is refused.
  std::vector<std::string> command_probe_allowlist;
};

// One run to start (SubmitRun, or a schedule's due time).
struct RunRequest {
  std::string experiment_yaml;
  std::string file_name;  // for error messages; empty: "<submitted>"
  Duration lease_ttl{};   // lease of every fault; zero: ControllerServiceOptions::default_lease_ttl
  std::string source = "controller";  // recorded in the store: "controller", "schedule:<name>"
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

class ControllerService final : public v1::Controller::CallbackService {
 public:
  // `registry` must outlive the service and the server it is registered with.
  ControllerService(AgentRegistry& registry, ControllerServiceOptions options);
  // Cancels every run (faults reverted) and waits for their threads.
  ~ControllerService() override;

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Attach(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerWriteReactor<v1::RunEvent>* SubmitRun(grpc::CallbackServerContext* ctx,
                                                    const v1::SubmitRunRequest* request) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;
  grpc::ServerUnaryReactor* ListFaults(grpc::CallbackServerContext* ctx,
                                       const v1::ListFleetFaultsRequest* request,
                                       v1::ListFleetFaultsResponse* response) override;
  grpc::ServerUnaryReactor* Halt(grpc::CallbackServerContext* ctx, const v1::HaltRequest* request,
                                 v1::HaltResponse* response) override;
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* ctx,
                                   const v1::ResumeRequest* request,
                                   v1::ResumeResponse* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* ctx,
                                   const v1::GetRunRequest* request,
                                   v1::RunSummary* response) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* ctx,
                                     const v1::ListRunsRequest* request,
                                     v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* AnnotateRun(grpc::CallbackServerContext* ctx,
                                        const v1::AnnotateRunRequest* request,
                                        v1::RunAnnotation* response) override;
  grpc::ServerUnaryReactor* AddSchedule(grpc::CallbackServerContext* ctx,
                                        const v1::AddScheduleRequest* request,
                                        v1::AddScheduleResponse* response) override;
  grpc::ServerUnaryReactor* ListSchedules(grpc::CallbackServerContext* ctx,
                                          const v1::ListSchedulesRequest* request,
                                          v1::ListSchedulesResponse* response) override;
  grpc::ServerUnaryReactor* RemoveSchedule(grpc::CallbackServerContext* ctx,
                                           const v1::RemoveScheduleRequest* request,
                                           v1::RemoveScheduleResponse* response) override;
  grpc::ServerUnaryReactor* PauseSchedule(grpc::CallbackServerContext* ctx,
                                          const v1::PauseScheduleRequest* request,
                                          v1::PauseScheduleResponse* response) override;
  grpc::ServerUnaryReactor* ListFirings(grpc::CallbackServerContext* ctx,
                                        const v1::ListFiringsRequest* request,
                                        v1::ListFiringsResponse* response) override;

  // Starts a run on a service thread with the engine, talking to the attached agents, and
  // returns its id once it is registered (and, with a store, recorded as running with owner
  // controller_id — what the Scheduler's launcher must guarantee). FAILED_PRECONDITION while
  // halted; INVALID_ARGUMENT for an invalid experiment (every error as file:line:column,
  // nothing applied); UNAVAILABLE while the service is stopping.
  Result<std::string> StartRun(RunRequest request);
  // Cancels a run of this process (verdict ABORTED, faults reverted); false when not active.
  bool CancelRun(const std::string& run_id, const std::string& reason);

  // Halt without gRPC (the RPC calls this): refuses new runs until ResumeAll, cancels every run
  // and sends revert-all to every live agent at once, retrying agents that failed while time is
  // left; then records the halt in the store (if any) for the other controllers on it.
  // Blocking; idempotent.
  HaltOutcome HaltAll(const std::string& reason);
  // Lifts a halt, here and in the store; returns whether one was in force (here or there).
  bool ResumeAll();
  bool halted() const { return halted_.load(); }
  // Follows the store's halt (given to another controller on it): halts here when it was
  // recorded and resumes when it was lifted, since the last call (the first call compares with
  // "not halted", so a controller started during a halt halts). A halt given to this controller
  // whose store write failed is kept. Call from one thread (the scheduling loop). No-op without
  // a store.
  void SyncHaltWithStore();

 private:
  class RunStream;

  grpc::Status Authorize(grpc::CallbackServerContext* ctx, bool agent_rpc, const char* action);
  // Runs `work` on a service thread (joined at destruction).
  void Spawn(std::function<void()> work);
  void RecordRun(const v1::RunSummary& summary);
  HaltOutcome HaltHere(const std::string& reason);
  // OK with a store; FAILED_PRECONDITION for a store-only RPC without one.
  grpc::Status NeedStore(const char* action) const;

  AgentRegistry& registry_;
  const ControllerServiceOptions options_;
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
};

}  // namespace faultline::daemon
