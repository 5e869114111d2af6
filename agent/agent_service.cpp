#include "agent/agent_service.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/fault_backend.h"
#include "agent/net/accept_gate.h"
#include "common/clock.h"
#include "common/faultspec/workload_selector.h"
#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/tls.h"

#ifndef FAULTLINE_VERSION
#error "FAULTLINE_VERSION must be defined by the build (agent/CMakeLists.txt)"
#endif

namespace faultline::agent {
namespace {

// Handlers other than ApplyFault answer on the callback thread: FaultManager never holds its lock
// across I/O, so a revert waits at most on its own backend revert (a netlink transaction), never
// behind an apply. ApplyFault runs on the ApplyExecutor and finishes from there.
grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// UTC wall time with milliseconds, for the audit line's "when".
std::string UtcNow() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms.count()));
  return out;
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return "ERROR";
  }
}

}  // namespace

const char* AgentVersion() { return FAULTLINE_VERSION; }

v1::AgentInfo DescribeAgent(const FaultManager& manager, const FaultRegistry& registry,
                            const AgentIdentity& identity) {
  v1::AgentInfo info;
  info.set_agent_id(identity.agent_id);
  for (const auto& [key, value] : identity.labels) (*info.mutable_labels())[key] = value;
  info.set_version(AgentVersion());
  Capabilities caps = registry.GetCapabilities();
  for (const std::string& kind : caps.available) info.add_capabilities(kind);
  for (const auto& [kind, reason] : caps.missing)
    (*info.mutable_missing_capabilities())[kind] = reason;
  info.set_active_faults(static_cast<uint32_t>(manager.ActiveCount()));
  info.set_max_active_faults(manager.options().max_active_faults);
  info.set_max_lease_ttl_ms(static_cast<uint32_t>(manager.options().max_lease_ttl.count()));
  // Read last, just before answering: the controller's clock mapping brackets it by round trip.
  info.set_monotonic_ns(SystemClock::Instance().Now().count());
  return info;
}

AgentService::AgentService(FaultManager& manager, const FaultRegistry& registry,
                           AgentIdentity identity, AccessPolicy policy,
                           ApplyExecutorOptions apply_options)
    : manager_(manager),
      registry_(registry),
      identity_(std::move(identity)),
      policy_(policy),
      executor_(std::make_unique<ApplyExecutor>(apply_options)) {}

AgentService::~AgentService() { executor_->Shutdown(); }

void AgentService::StopApplies() { executor_->Shutdown(); }

bool AgentService::WaitAppliesIdle(std::chrono::milliseconds timeout) {
  return executor_->WaitIdle(timeout);
}

namespace {

// The caller's identity, with the real remote address when the call came through the accept
// gate (agent/net/accept_gate.h) rather than straight to gRPC.
PeerIdentity Caller(const grpc::CallbackServerContext& ctx) {
  PeerIdentity peer = IdentifyPeer(ctx);
  peer.address = net::RemoteAddressOfPeer(peer.address);
  return peer;
}

// The one workload `selector` names on this host, as the proto the journal keeps: NOT_FOUND when
// none matches, FAILED_PRECONDITION when several do (a fault acts in exactly one), discovery's
// errors as they are.
Result<v1::Workload> ResolveOneWorkload(const WorkloadLister& lister,
                                        const v1::WorkloadSelector& selector,
                                        const std::string& agent) {
  Result<v1::ListWorkloadsResponse> found = lister(selector);
  if (!found.ok()) {
    return Status(found.status().code(),
                  "workload discovery on agent " + agent + ": " + found.status().message());
  }
  std::string failed;
  for (const auto& [runtime, why] : found->runtime_errors()) {
    failed += (failed.empty() ? " (" : ", ") + runtime + ": " + why;
  }
  if (!failed.empty()) failed += ")";
  if (found->workloads_size() == 0) {
    return NotFound("no workload on agent " + agent + " matches " + selector.ShortDebugString() +
                    failed);
  }
  if (found->workloads_size() > 1) {
    std::string names;
    for (const v1::Workload& w : found->workloads()) {
      if (names.size() > 200) {
        names += ", ...";
        break;
      }
      names += (names.empty() ? "" : ", ") + w.name() + " (" + w.id().substr(0, 12) + ")";
    }
    return FailedPrecondition(std::to_string(found->workloads_size()) + " workloads on agent " +
                              agent + " match " + selector.ShortDebugString() + ": " + names +
                              "; a fault is applied in exactly one (name it by id)");
  }
  return found->workloads(0);
}

}  // namespace

grpc::Status AgentService::Authorize(grpc::CallbackServerContext* ctx, const char* action,
                                     const std::string& what) {
  if (policy_ == AccessPolicy::kPlaintextAllowAll) return grpc::Status::OK;
  PeerIdentity peer = Caller(*ctx);
  if (peer.authenticated && peer.role &&
      (*peer.role == Role::kOperator || *peer.role == Role::kController)) {
    return grpc::Status::OK;
  }
  std::string why = !peer.authenticated ? "no verified client certificate"
                    : peer.role
                        ? std::string("role '") + RoleName(*peer.role) + "' may not " + action
                        : "the certificate carries no faultline role";
  spdlog::warn(
      "audit: at={} action={} outcome=PERMISSION_DENIED identity=\"{}\" peer={} {} "
      "reason=\"{}\"",
      UtcNow(), action, LogSafe(peer.Describe()), LogSafe(peer.address), what, why);
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      std::string(action) + " refused: " + why +
                          " (needs a certificate with role operator or controller)");
}

void AgentService::Audit(grpc::CallbackServerContext* ctx, const char* action,
                         const std::string& what, const grpc::Status& outcome) {
  PeerIdentity peer = Caller(*ctx);
  if (outcome.ok()) {
    spdlog::info("audit: at={} action={} outcome=OK identity=\"{}\" peer={} {}", UtcNow(), action,
                 LogSafe(peer.Describe()), LogSafe(peer.address), what);
  } else {
    spdlog::warn("audit: at={} action={} outcome={} identity=\"{}\" peer={} {} error=\"{}\"",
                 UtcNow(), action, CodeName(outcome.error_code()), LogSafe(peer.Describe()),
                 LogSafe(peer.address), what, LogSafe(outcome.error_message()));
  }
}

grpc::ServerUnaryReactor* AgentService::GetInfo(grpc::CallbackServerContext* ctx,
                                                const v1::GetInfoRequest* request,
                                                v1::AgentInfo* response) {
  *response = DescribeAgent(manager_, registry_, identity_);
  for (const auto& [name, what] : runtimes_) (*response->mutable_runtimes())[name] = what;
  response->set_monotonic_ns(SystemClock::Instance().Now().count());  // after the runtimes
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AgentService::ApplyFault(grpc::CallbackServerContext* ctx,
                                                   const v1::ApplyFaultRequest* request,
                                                   v1::ApplyFaultResponse* response) {
  const std::string what = "run_id=" + LogId(request->run_id(), IsValidRunId) +
                           " fault_id=" + LogId(request->fault_id(), IsValidFaultId) +
                           " kind=" + FaultKindOf(request->spec()) +
                           " lease_ttl_ms=" + std::to_string(request->lease_ttl_ms());
  if (grpc::Status denied = Authorize(ctx, "ApplyFault", what); !denied.ok()) {
    return Finish(ctx, denied);
  }
  // A workload fault: the agent resolves the selector itself (below, on the worker) and fills
  // resolved_workload from its own discovery; a caller's resolved workload is never trusted.
  if (request->has_resolved_workload()) {
    grpc::Status status(grpc::StatusCode::INVALID_ARGUMENT,
                        "resolved_workload is filled by the agent from `workload`; a request "
                        "may not carry it");
    Audit(ctx, "ApplyFault", what, status);
    return Finish(ctx, status);
  }
  const bool in_workload =
      request->has_workload() && faultspec::WorkloadSelectorIsSet(request->workload());
  if (in_workload) {
    Status st = faultspec::ValidateWorkloadSelector(request->workload());
    if (st.ok() && !workload_lister_) {
      st = FailedPrecondition("workload discovery is not enabled on this agent");
    }
    if (!st.ok()) {
      grpc::Status status = ToGrpcStatus(st);
      Audit(ctx, "ApplyFault", what, status);
      return Finish(ctx, status);
    }
  }
  // The apply runs on a worker; whichever ends the call first (the worker, a stop cancelling the
  // apply, the executor refusing or dropping it) answers it, exactly once.
  struct Call {
    std::mutex mu;
    bool done = false;
  };
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<Call>();
  auto finish = [this, ctx, reactor, response, call, what](const grpc::Status& status,
                                                           v1::FaultStatus* fault) {
    std::lock_guard<std::mutex> lock(call->mu);
    if (call->done) return;  // ctx and response may be gone already
    call->done = true;
    if (fault != nullptr) *response->mutable_fault() = std::move(*fault);
    Audit(ctx, "ApplyFault", what, status);
    reactor->Finish(status);
  };
  bool queued = executor_->Submit(
      [this, finish, copy = *request, in_workload, lister = workload_lister_]() mutable {
        if (in_workload) {
          Result<v1::Workload> one =
              ResolveOneWorkload(*lister, copy.workload(), identity_.agent_id);
          if (!one.ok()) return finish(ToGrpcStatus(one.status()), nullptr);
          *copy.mutable_resolved_workload() = std::move(one).value();
        }
        Result<v1::FaultStatus> result = manager_.Apply(
            copy, [finish](const Status& aborted) { finish(ToGrpcStatus(aborted), nullptr); });
        if (!result.ok()) return finish(ToGrpcStatus(result.status()), nullptr);
        v1::FaultStatus fault = std::move(result).value();
        finish(grpc::Status::OK, &fault);
      },
      [finish] {
        finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the agent is shutting down"), nullptr);
      });
  if (!queued) {
    finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many fault applies in progress on this agent (" +
                            std::to_string(executor_->running()) + " running, " +
                            std::to_string(executor_->queued()) + " queued); retry later"),
           nullptr);
  }
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::RenewLease(grpc::CallbackServerContext* ctx,
                                                   const v1::RenewLeaseRequest* request,
                                                   v1::RenewLeaseResponse* response) {
  const std::string what = "fault_id=" + LogId(request->fault_id(), IsValidFaultId) +
                           " lease_ttl_ms=" + std::to_string(request->lease_ttl_ms());
  if (grpc::Status denied = Authorize(ctx, "RenewLease", what); !denied.ok()) {
    return Finish(ctx, denied);
  }
  Result<v1::FaultStatus> result = manager_.Renew(request->fault_id(), request->lease_ttl_ms());
  if (result.ok()) *response->mutable_fault() = std::move(result).value();
  grpc::Status status = ToGrpcStatus(result.status());
  // Renewals come every few seconds per fault: only their failures are worth an audit line.
  if (!status.ok()) Audit(ctx, "RenewLease", what, status);
  return Finish(ctx, status);
}

grpc::ServerUnaryReactor* AgentService::RevertFault(grpc::CallbackServerContext* ctx,
                                                    const v1::RevertFaultRequest* request,
                                                    v1::RevertFaultResponse* response) {
  const std::string what = "fault_id=" + LogId(request->fault_id(), IsValidFaultId);
  if (grpc::Status denied = Authorize(ctx, "RevertFault", what); !denied.ok()) {
    return Finish(ctx, denied);
  }
  Result<std::optional<v1::FaultStatus>> result =
      manager_.Revert(request->fault_id(), kRevertReasonRequest);
  if (result.ok() && result->has_value()) *response->mutable_fault() = std::move(**result);
  grpc::Status status = ToGrpcStatus(result.status());
  Audit(ctx, "RevertFault", what, status);
  return Finish(ctx, status);
}

grpc::ServerUnaryReactor* AgentService::RevertAll(grpc::CallbackServerContext* ctx,
                                                  const v1::RevertAllRequest* request,
                                                  v1::RevertAllResponse* response) {
  const std::string what =
      "run_id=" +
      (request->run_id().empty() ? std::string("*") : LogId(request->run_id(), IsValidRunId));
  if (grpc::Status denied = Authorize(ctx, "RevertAll", what); !denied.ok()) {
    return Finish(ctx, denied);
  }
  // A halt stops the agent-side probes too (of that run, or all of them).
  if (probe_streams_ != nullptr) probe_streams_->CancelAll(request->run_id());
  Result<std::vector<v1::FaultStatus>> result =
      manager_.RevertAll(request->run_id(), kRevertReasonRevertAll);
  if (result.ok()) {
    for (v1::FaultStatus& status : *result) *response->add_reverted() = std::move(status);
  }
  grpc::Status status = ToGrpcStatus(result.status());
  Audit(ctx, "RevertAll", what + " reverted=" + std::to_string(response->reverted_size()), status);
  return Finish(ctx, status);
}

grpc::ServerUnaryReactor* AgentService::ListFaults(grpc::CallbackServerContext* ctx,
                                                   const v1::ListFaultsRequest* request,
                                                   v1::ListFaultsResponse* response) {
  for (v1::FaultStatus& status : manager_.List(request->include_reverted())) {
    *response->add_faults() = std::move(status);
  }
  return Finish(ctx, grpc::Status::OK);
}

void AgentService::SetWorkloads(WorkloadLister lister,
                                std::map<std::string, std::string> runtimes) {
  workload_lister_ = std::make_shared<const WorkloadLister>(std::move(lister));
  runtimes_ = std::move(runtimes);
}

grpc::ServerUnaryReactor* AgentService::ListWorkloads(grpc::CallbackServerContext* ctx,
                                                      const v1::ListWorkloadsRequest* request,
                                                      v1::ListWorkloadsResponse* response) {
  if (!workload_lister_) {
    return Finish(ctx, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                    "workload discovery is not enabled on this agent"));
  }
  if (Status st = faultspec::ValidateWorkloadSelector(request->selector()); !st.ok()) {
    return Finish(ctx, ToGrpcStatus(st));
  }
  if (workload_lists_in_flight_->fetch_add(1) >= kMaxWorkloadListsInFlight) {
    workload_lists_in_flight_->fetch_sub(1);
    return Finish(ctx, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                    "too many ListWorkloads calls at once"));
  }
  // Runtime calls are I/O with deadlines: never on the callback thread. The thread owns what it
  // uses (the lister, the counter); gRPC keeps request and response alive until Finish.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::thread([lister = workload_lister_, in_flight = workload_lists_in_flight_, reactor, request,
               response] {
    Result<v1::ListWorkloadsResponse> got = (*lister)(request->selector());
    if (got.ok()) *response = std::move(*got);
    in_flight->fetch_sub(1);
    reactor->Finish(ToGrpcStatus(got.status()));
  }).detach();
  return reactor;
}

grpc::ServerWriteReactor<v1::ProbeSample>* AgentService::Probe(grpc::CallbackServerContext* ctx,
                                                               const v1::ProbeRequest* request) {
  const std::string what = "run_id=" + LogId(request->run_id(), IsValidRunId) +
                           " probe=" + request->name().substr(0, 64);
  if (grpc::Status denied = Authorize(ctx, "Probe", what); !denied.ok()) {
    return FinishedProbeStream(denied);
  }
  if (probe_streams_ == nullptr) {
    return FinishedProbeStream(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                            "agent-side probes are not enabled on this agent"));
  }
  Audit(ctx, "Probe", what, grpc::Status::OK);
  return probe_streams_->Start(ctx, *request);
}

}  // namespace faultline::agent
