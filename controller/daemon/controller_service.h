#pragma once
// ControllerService: the Controller gRPC service (controller.proto, callback API) of
// faultline-controller. Agents Attach (AgentRegistry); operators submit runs (the same RunEngine
// as `faultline run`, talking to agents over their Attach streams), list agents and the fleet's
// active faults, halt everything and resume.
//
// Authorization by certificate role (common/certificates.h): Attach needs role agent, every
// other RPC role operator; anything else is PERMISSION_DENIED. Under AccessPolicy kPlaintext
// (--insecure on loopback or the sandbox) there is no identity and every caller is allowed.
// Blocking work (runs, fan-outs) happens on the service's own threads, never in a handler.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/duration.h"
#include "controller/daemon/agent_registry.h"
#include "controller/engine/run_engine.h"
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

  // Halt without gRPC (the RPC calls this): refuses new runs until ResumeAll, cancels every run
  // and sends revert-all to every live agent at once, retrying agents that failed while time is
  // left. Blocking; idempotent.
  HaltOutcome HaltAll(const std::string& reason);
  // Lifts a halt; returns whether one was in force.
  bool ResumeAll();
  bool halted() const { return halted_.load(); }

 private:
  class RunStream;

  grpc::Status Authorize(grpc::CallbackServerContext* ctx, bool agent_rpc, const char* action);
  // Runs `work` on a service thread (joined at destruction).
  void Spawn(std::function<void()> work);
  void RecordRun(const v1::RunSummary& summary);

  AgentRegistry& registry_;
  const ControllerServiceOptions options_;
  std::atomic<bool> halted_{false};

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
