#pragma once
// AgentService: the Agent gRPC service (callback API). Each RPC validates nothing itself and
// delegates to FaultManager / FaultRegistry; Status becomes grpc::Status only here.
//
// Authorization happens here: ApplyFault, RenewLease, RevertFault and RevertAll need a verified
// client certificate whose role (common/certificates.h) is operator or controller; anything else
// gets PERMISSION_DENIED and nothing is done. GetInfo and ListFaults are open to any peer the
// transport admitted. Audit log (spdlog, lines starting "audit:"): every mutating call, allowed
// or refused, with when, who (certificate CN and role), from where (peer address), what (RPC,
// run, fault, kind) and the outcome.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/apply_executor.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/probe_streams.h"
#include "common/status.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::agent {

// Who this agent is, as reported by GetInfo.
struct AgentIdentity {
  std::string agent_id;
  std::map<std::string, std::string> labels;
};

// The agent's version (the CMake project version, e.g. "0.1.0").
const char* AgentVersion();

// Revert reasons of a RevertFault and a RevertAll, whoever asked (operator, controller stream).
inline constexpr char kRevertReasonRequest[] = "request";
inline constexpr char kRevertReasonRevertAll[] = "revert-all";

// What GetInfo reports (and what an agent's Hello to a controller carries): identity, version,
// detected and missing capabilities, active faults and limits.
v1::AgentInfo DescribeAgent(const FaultManager& manager, const FaultRegistry& registry,
                            const AgentIdentity& identity);

// Who may mutate.
enum class AccessPolicy {
  // Production: only verified operator/controller certificates.
  kRequireOperatorOrController,
  // The agent serves plaintext (--insecure, loopback or sandbox only): there is no identity to
  // check, so every caller may mutate; the audit log records them as anonymous.
  kPlaintextAllowAll,
};

// Resolves a workload selector on this host for ListWorkloads: agent/workloads' WorkloadResolver in
// the agent, a fake in tests. Called on its own thread, never on a gRPC callback thread; must be
// thread-safe and bounded in time (every runtime call has a deadline).
using WorkloadLister =
    std::function<Result<v1::ListWorkloadsResponse>(const v1::WorkloadSelector& selector)>;

class AgentService final : public v1::Agent::CallbackService {
 public:
  // Most ListWorkloads calls resolving at once; more are answered RESOURCE_EXHAUSTED.
  static constexpr int kMaxWorkloadListsInFlight = 4;

  // `manager` and `registry` must outlive the service (and the server it is registered with).
  // `apply_options` bounds the workers that run ApplyFault (see ApplyExecutor).
  AgentService(FaultManager& manager, const FaultRegistry& registry, AgentIdentity identity,
               AccessPolicy policy = AccessPolicy::kRequireOperatorOrController,
               ApplyExecutorOptions apply_options = {});
  // StopApplies(); a still-running apply is not waited for (see ApplyExecutor's destructor).
  ~AgentService() override;

  // Enables ListWorkloads and workload faults through `lister` and makes GetInfo report
  // `runtimes` (runtime name -> socket and version, found at start). An ApplyFault naming a
  // workload (field 5) is resolved with `lister` on the apply worker to exactly one workload,
  // which the agent writes into resolved_workload (field 6) before the fault is journaled:
  // NOT_FOUND when none matches, FAILED_PRECONDITION when several do; a request carrying
  // resolved_workload itself is INVALID_ARGUMENT. Without a lister a workload fault is
  // FAILED_PRECONDITION. Call before the service is registered with a server;
  // not thread-safe against running calls. Without it ListWorkloads is FAILED_PRECONDITION.
  void SetWorkloads(WorkloadLister lister, std::map<std::string, std::string> runtimes);

  // Refuses further ApplyFault calls (UNAVAILABLE) and answers the queued ones UNAVAILABLE.
  // Applies already running go on (FaultManager::Shutdown cancels them). Call before the gRPC
  // server's Shutdown, which waits for every call to be answered. Idempotent; thread-safe.
  void StopApplies();
  // Waits up to `timeout` until no apply runs or waits. True when idle.
  bool WaitAppliesIdle(std::chrono::milliseconds timeout);

  // Identity, version, detected and missing capabilities, active faults and limits. Never fails.
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx,
                                    const v1::GetInfoRequest* request,
                                    v1::AgentInfo* response) override;
  // FaultManager::Apply, run on a bounded worker pool, never on the gRPC callback thread; its
  // error codes map one-to-one. RESOURCE_EXHAUSTED when every worker is busy and the queue is
  // full; UNAVAILABLE after StopApplies. A revert, halt or shutdown that cancels the apply answers
  // the call at once (ABORTED). PERMISSION_DENIED (see the top).
  grpc::ServerUnaryReactor* ApplyFault(grpc::CallbackServerContext* ctx,
                                       const v1::ApplyFaultRequest* request,
                                       v1::ApplyFaultResponse* response) override;
  // FaultManager::Renew.
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* ctx,
                                       const v1::RenewLeaseRequest* request,
                                       v1::RenewLeaseResponse* response) override;
  // FaultManager::Revert with reason "request"; idempotent. Runs on the callback thread and never
  // waits behind an apply.
  grpc::ServerUnaryReactor* RevertFault(grpc::CallbackServerContext* ctx,
                                        const v1::RevertFaultRequest* request,
                                        v1::RevertFaultResponse* response) override;
  // FaultManager::RevertAll with reason "revert-all". On a partial failure the status is
  // INTERNAL naming the faults that failed; the others are reverted regardless (ListFaults with
  // include_reverted shows them).
  grpc::ServerUnaryReactor* RevertAll(grpc::CallbackServerContext* ctx,
                                      const v1::RevertAllRequest* request,
                                      v1::RevertAllResponse* response) override;
  // FaultManager::List.
  grpc::ServerUnaryReactor* ListFaults(grpc::CallbackServerContext* ctx,
                                       const v1::ListFaultsRequest* request,
                                       v1::ListFaultsResponse* response) override;
  // Validates the selector (faultspec::ValidateWorkloadSelector: INVALID_ARGUMENT) and resolves it
  // with the WorkloadLister on a short-lived thread of its own (at most kMaxWorkloadListsInFlight:
  // RESOURCE_EXHAUSTED). Read-only, open to any admitted peer like ListFaults.
  grpc::ServerUnaryReactor* ListWorkloads(grpc::CallbackServerContext* ctx,
                                          const v1::ListWorkloadsRequest* request,
                                          v1::ListWorkloadsResponse* response) override;
  // Runs an agent-side probe and streams its samples (ProbeStreams, agent/probe_streams.h). Needs
  // the same authorization as ApplyFault (the probe makes this host send traffic). UNIMPLEMENTED
  // when no ProbeStreams was set.
  grpc::ServerWriteReactor<v1::ProbeSample>* Probe(grpc::CallbackServerContext* ctx,
                                                   const v1::ProbeRequest* request) override;
  // Enables the Probe RPC; RevertAll (a halt) then also stops every probe stream. `streams` must
  // outlive the service. Call before the service is registered with a server.
  void SetProbeStreams(ProbeStreams* streams) { probe_streams_ = streams; }

 private:
  // PERMISSION_DENIED unless the peer may mutate under policy_; writes the refusal's audit line.
  grpc::Status Authorize(grpc::CallbackServerContext* ctx, const char* action,
                         const std::string& what);
  // The audit line for an allowed call once it has finished.
  void Audit(grpc::CallbackServerContext* ctx, const char* action, const std::string& what,
             const grpc::Status& outcome);

  FaultManager& manager_;
  const FaultRegistry& registry_;
  const AgentIdentity identity_;
  const AccessPolicy policy_;
  const std::unique_ptr<ApplyExecutor> executor_;
  std::shared_ptr<const WorkloadLister> workload_lister_;
  std::map<std::string, std::string> runtimes_;
  ProbeStreams* probe_streams_ = nullptr;
  std::shared_ptr<std::atomic<int>> workload_lists_in_flight_ =
      std::make_shared<std::atomic<int>>(0);
};

}  // namespace faultline::agent
