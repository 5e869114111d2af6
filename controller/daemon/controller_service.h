#pragma once
// ControllerService: the Controller gRPC service (controller.proto, callback API) of
// faultline-controller. It adapts RPCs to a RunSupervisor (run_supervisor.h: runs, halt,
// fleet faults, history, schedules, without gRPC) and attaches agents to the AgentRegistry.
//
// Authorization by certificate role (common/certificates.h, docs/access.md): Attach needs role
// agent; the read RPCs (ListAgents, ListFaults, GetRun, ListRuns, ListSchedules, ListFirings)
// role viewer or operator; every other RPC role operator; anything else is PERMISSION_DENIED,
// audited. SubmitRun passes the caller (with its team) to the supervisor, where the team policy
// applies. AddSchedule under a team policy needs an operator without a team (a schedule's runs
// start without a principal). Under --insecure (loopback or the sandbox) there is no identity
// and every caller is an operator without a team. Every action and every refusal goes through
// one AuditLog (controller/access/audit.h).
// No handler blocks: runs, halts and fan-outs happen on the supervisor's threads, and every
// store call (history, schedules, a run's record, resume) on its store worker, which finishes
// the RPC; when that worker's queue is full the RPC fails with RESOURCE_EXHAUSTED.
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
#include "controller/access/audit.h"
#include "controller/access/token_authority.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/run_supervisor.h"
#include "controller/engine/run_engine.h"
#include "controller/store/run_store.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::daemon {

// The supervisor's options (runs, halt, store; run_supervisor.h) and the RPCs' access policy.
struct ControllerServiceOptions : RunSupervisorOptions {
  // false: check certificate roles (see the top); true: plaintext, everyone allowed.
  bool plaintext_allow_all = false;
};

// The Controller service's server settings for a fleet (faultline-controller's main and tests
// call it on the builder before BuildAndStart). Every attached agent holds one mTLS connection for
// as long as it lives, and most of the controller's memory per agent is that connection's TLS
// buffers: gRPC gives each one a frame buffer of kAgentTlsFrameBytes (16 KiB by default) besides
// OpenSSL's own. Commands and heartbeats are small; a larger message simply spans several
// frames. Idempotent; never fails.
inline constexpr int kAgentTlsFrameBytes = 4096;
void ConfigureControllerServer(grpc::ServerBuilder& builder);

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
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const v1::CreateTokenRequest* request,
                                        v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const v1::ListTokensRequest* request,
                                       v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const v1::RevokeTokenRequest* request,
                                        v1::RevokeTokenResponse* response) override;

  // The supervisor's, for the scheduling loop, main and tests (see run_supervisor.h).
  Result<std::string> StartRun(RunRequest request) {
    return supervisor_->StartRun(std::move(request));
  }
  bool CancelRun(const std::string& run_id, const std::string& reason) {
    return supervisor_->CancelRun(run_id, reason);
  }
  HaltOutcome HaltAll(const std::string& reason) { return supervisor_->HaltAll(reason); }
  bool ResumeAll() { return supervisor_->ResumeAll(); }
  bool halted() const { return supervisor_->halted(); }
  void SyncHaltWithStore() { supervisor_->SyncHaltWithStore(); }
  RunSupervisor& supervisor() { return *supervisor_; }
  // The access layer, for the console (docs/console-api.md): the one audit log, and the token
  // authority (null without a store).
  access::AuditLog& audit() { return *audit_; }
  access::TokenAuthority* tokens() { return tokens_.get(); }

 private:
  class RunStream;
  class RegistryFleet;

  // The caller as a principal allowed to do what needs `needed`, or the refusal (audited as
  // `action`). Attach is checked separately (AuthorizeAgent).
  Result<access::Principal> Authorize(grpc::CallbackServerContext* ctx, Role needed,
                                      const char* action);
  grpc::Status AuthorizeAgent(grpc::CallbackServerContext* ctx);
  // Runs `work` on the supervisor's store worker and finishes the RPC with its status there.
  grpc::ServerUnaryReactor* OnStoreWorker(grpc::CallbackServerContext* ctx,
                                          std::function<Status()> work);

  AgentRegistry& registry_;
  const bool plaintext_allow_all_;
  access::PolicyFile* const policy_;
  std::unique_ptr<access::AuditLog> own_audit_;  // when the options give none
  access::AuditLog* audit_;
  std::unique_ptr<access::TokenAuthority> tokens_;  // null without a store
  std::unique_ptr<RegistryFleet> fleet_;
  std::unique_ptr<RunSupervisor> supervisor_;  // declared last: destroyed (runs joined) first
};

}  // namespace faultline::daemon
