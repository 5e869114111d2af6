#include "agent/agent_service.h"

#include <spdlog/spdlog.h>

#ifndef FAULTLINE_VERSION
#error "FAULTLINE_VERSION must be defined by the build (agent/CMakeLists.txt)"
#endif

namespace faultline::agent {
namespace {

constexpr char kReasonRequest[] = "request";
constexpr char kReasonRevertAll[] = "revert-all";

// Every handler answers synchronously; FaultManager calls are short (a journal fsync and a
// netlink transaction at most), so they run on the callback thread rather than a worker pool.
grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace

const char* AgentVersion() { return FAULTLINE_VERSION; }

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

AgentService::AgentService(FaultManager& manager, const FaultRegistry& registry,
                           AgentIdentity identity)
    : manager_(manager), registry_(registry), identity_(std::move(identity)) {}

grpc::ServerUnaryReactor* AgentService::GetInfo(grpc::CallbackServerContext* ctx,
                                                const v1::GetInfoRequest* request,
                                                v1::AgentInfo* response) {
  response->set_agent_id(identity_.agent_id);
  for (const auto& [key, value] : identity_.labels) (*response->mutable_labels())[key] = value;
  response->set_version(AgentVersion());
  Capabilities caps = registry_.GetCapabilities();
  for (const std::string& kind : caps.available) response->add_capabilities(kind);
  for (const auto& [kind, reason] : caps.missing) {
    (*response->mutable_missing_capabilities())[kind] = reason;
  }
  response->set_active_faults(static_cast<uint32_t>(manager_.ActiveCount()));
  response->set_max_active_faults(manager_.options().max_active_faults);
  response->set_max_lease_ttl_ms(static_cast<uint32_t>(manager_.options().max_lease_ttl.count()));
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AgentService::ApplyFault(grpc::CallbackServerContext* ctx,
                                                   const v1::ApplyFaultRequest* request,
                                                   v1::ApplyFaultResponse* response) {
  Result<v1::FaultStatus> result = manager_.Apply(*request);
  if (result.ok()) *response->mutable_fault() = std::move(result).value();
  return Finish(ctx, ToGrpcStatus(result.status()));
}

grpc::ServerUnaryReactor* AgentService::RenewLease(grpc::CallbackServerContext* ctx,
                                                   const v1::RenewLeaseRequest* request,
                                                   v1::RenewLeaseResponse* response) {
  Result<v1::FaultStatus> result = manager_.Renew(request->fault_id(), request->lease_ttl_ms());
  if (result.ok()) *response->mutable_fault() = std::move(result).value();
  return Finish(ctx, ToGrpcStatus(result.status()));
}

grpc::ServerUnaryReactor* AgentService::RevertFault(grpc::CallbackServerContext* ctx,
                                                    const v1::RevertFaultRequest* request,
                                                    v1::RevertFaultResponse* response) {
  Result<std::optional<v1::FaultStatus>> result =
      manager_.Revert(request->fault_id(), kReasonRequest);
  if (result.ok() && result->has_value()) *response->mutable_fault() = std::move(**result);
  return Finish(ctx, ToGrpcStatus(result.status()));
}

grpc::ServerUnaryReactor* AgentService::RevertAll(grpc::CallbackServerContext* ctx,
                                                  const v1::RevertAllRequest* request,
                                                  v1::RevertAllResponse* response) {
  Result<std::vector<v1::FaultStatus>> result =
      manager_.RevertAll(request->run_id(), kReasonRevertAll);
  if (result.ok()) {
    for (v1::FaultStatus& status : *result) *response->add_reverted() = std::move(status);
  }
  return Finish(ctx, ToGrpcStatus(result.status()));
}

grpc::ServerUnaryReactor* AgentService::ListFaults(grpc::CallbackServerContext* ctx,
                                                   const v1::ListFaultsRequest* request,
                                                   v1::ListFaultsResponse* response) {
  for (v1::FaultStatus& status : manager_.List(request->include_reverted())) {
    *response->add_faults() = std::move(status);
  }
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AgentService::Probe(grpc::CallbackServerContext* ctx,
                                              const v1::ProbeRequest* request,
                                              v1::ProbeResponse* response) {
  return Finish(ctx, grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                  "agent-side probes are not available in this version"));
}

}  // namespace faultline::agent
