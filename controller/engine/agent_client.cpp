#include "controller/engine/agent_client.h"

#include <grpcpp/grpcpp.h>

namespace faultline::engine {

namespace {

void SetDeadline(grpc::ClientContext& ctx, Duration d) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(d));
}

uint32_t ToMs(Duration d) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// One unary call in flight on gRPC's callback API: owns what must live until its callback.
template <typename Request, typename Response>
struct AsyncCall {
  grpc::ClientContext ctx;
  Request request;
  Response response;
};

}  // namespace

AgentClient::AgentClient(AgentEndpoint endpoint,
                         std::shared_ptr<grpc::ChannelCredentials> credentials)
    : endpoint_(std::move(endpoint)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  args.SetMaxSendMessageSize(4 << 20);
  // Fail fast on a dead agent instead of waiting out long reconnect back-offs.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_ =
      grpc::CreateCustomChannel(endpoint_.address, std::move(credentials), args);
  stub_ = v1::Agent::NewStub(channel_);
}

Status AgentClient::Convert(const grpc::Status& s, const char* what) const {
  if (s.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(s.error_code()),
                std::string(what) + " on agent " + endpoint_.name + " (" + endpoint_.address +
                    "): " + s.error_message());
}

Result<v1::AgentInfo> AgentClient::GetInfo(Duration deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  v1::AgentInfo info;
  auto s = stub_->GetInfo(&ctx, v1::GetInfoRequest(), &info);
  if (!s.ok()) return Convert(s, "GetInfo");
  return info;
}

Result<v1::FaultStatus> AgentClient::ApplyFault(const v1::ApplyFaultRequest& request,
                                                Duration deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  v1::ApplyFaultResponse resp;
  auto s = stub_->ApplyFault(&ctx, request, &resp);
  if (!s.ok()) return Convert(s, "ApplyFault");
  return resp.fault();
}

Result<v1::FaultStatus> AgentClient::RenewLease(const std::string& fault_id, Duration ttl,
                                                Duration deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  v1::RenewLeaseRequest req;
  req.set_fault_id(fault_id);
  req.set_lease_ttl_ms(ToMs(ttl));
  v1::RenewLeaseResponse resp;
  auto s = stub_->RenewLease(&ctx, req, &resp);
  if (!s.ok()) return Convert(s, "RenewLease");
  return resp.fault();
}

Result<v1::FaultStatus> AgentClient::RevertFault(const std::string& fault_id, Duration deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  v1::RevertFaultRequest req;
  req.set_fault_id(fault_id);
  v1::RevertFaultResponse resp;
  auto s = stub_->RevertFault(&ctx, req, &resp);
  if (!s.ok()) return Convert(s, "RevertFault");
  return resp.fault();
}

Result<std::vector<v1::FaultStatus>> AgentClient::ListFaults(bool include_reverted,
                                                             Duration deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  v1::ListFaultsRequest req;
  req.set_include_reverted(include_reverted);
  v1::ListFaultsResponse resp;
  auto s = stub_->ListFaults(&ctx, req, &resp);
  if (!s.ok()) return Convert(s, "ListFaults");
  return std::vector<v1::FaultStatus>(resp.faults().begin(), resp.faults().end());
}

void AgentClient::GetInfoAsync(Duration deadline, Done<v1::AgentInfo> done) {
  auto call = std::make_shared<AsyncCall<v1::GetInfoRequest, v1::AgentInfo>>();
  SetDeadline(call->ctx, deadline);
  stub_->async()->GetInfo(&call->ctx, &call->request, &call->response,
                          [this, call, done = std::move(done)](grpc::Status s) {
                            if (!s.ok()) return done(Convert(s, "GetInfo"));
                            done(std::move(call->response));
                          });
}

void AgentClient::ApplyFaultAsync(const v1::ApplyFaultRequest& request, Duration deadline,
                                  Done<v1::FaultStatus> done) {
  auto call = std::make_shared<AsyncCall<v1::ApplyFaultRequest, v1::ApplyFaultResponse>>();
  SetDeadline(call->ctx, deadline);
  call->request = request;
  stub_->async()->ApplyFault(&call->ctx, &call->request, &call->response,
                             [this, call, done = std::move(done)](grpc::Status s) {
                               if (!s.ok()) return done(Convert(s, "ApplyFault"));
                               done(std::move(*call->response.mutable_fault()));
                             });
}

void AgentClient::RenewLeaseAsync(const std::string& fault_id, Duration ttl, Duration deadline,
                                  Done<v1::FaultStatus> done) {
  auto call = std::make_shared<AsyncCall<v1::RenewLeaseRequest, v1::RenewLeaseResponse>>();
  SetDeadline(call->ctx, deadline);
  call->request.set_fault_id(fault_id);
  call->request.set_lease_ttl_ms(ToMs(ttl));
  stub_->async()->RenewLease(&call->ctx, &call->request, &call->response,
                             [this, call, done = std::move(done)](grpc::Status s) {
                               if (!s.ok()) return done(Convert(s, "RenewLease"));
                               done(std::move(*call->response.mutable_fault()));
                             });
}

void AgentClient::RevertFaultAsync(const std::string& fault_id, Duration deadline,
                                   Done<v1::FaultStatus> done) {
  auto call = std::make_shared<AsyncCall<v1::RevertFaultRequest, v1::RevertFaultResponse>>();
  SetDeadline(call->ctx, deadline);
  call->request.set_fault_id(fault_id);
  stub_->async()->RevertFault(&call->ctx, &call->request, &call->response,
                              [this, call, done = std::move(done)](grpc::Status s) {
                                if (!s.ok()) return done(Convert(s, "RevertFault"));
                                done(std::move(*call->response.mutable_fault()));
                              });
}

}  // namespace faultline::engine
