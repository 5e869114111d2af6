#include "controller/engine/agent_client.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>

#include "common/grpc_status.h"

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

// Starts one unary call with `start(ctx, request, response, callback)` and hands `done` the
// response (through `take`) or the error (through `fail`).
//
// The callback frees the call before it calls `done`. The ClientContext holds a reference to the
// channel, and once `done` has run the caller may drop its AgentClient, whose channel would then
// be released on gRPC's callback thread. gRPC 1.51 then tears down its callback completion queue
// from that very thread and aborts ("assertion failed: prior > 0" in grpc_cq_internal_unref;
// grpc/grpc#32584). Freed first, the context's reference is never the last one: the AgentClient
// still holds its channel until `done` has run.
template <typename T, typename Request, typename Response, typename Start, typename Take,
          typename Fail>
void CallAsync(Request request, Duration deadline, Start start, Take take, Fail fail,
               std::function<void(Result<T>)> done) {
  auto call = std::make_shared<AsyncCall<Request, Response>>();
  SetDeadline(call->ctx, deadline);
  call->request = std::move(request);
  AsyncCall<Request, Response>* raw = call.get();
  start(&raw->ctx, &raw->request, &raw->response,
        [call = std::move(call), take, fail, done = std::move(done)](grpc::Status s) mutable {
          Result<T> result = s.ok() ? Result<T>(take(call->response)) : Result<T>(fail(s));
          call.reset();
          done(std::move(result));
        });
}

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
  channel_ = grpc::CreateCustomChannel(endpoint_.address, std::move(credentials), args);
  stub_ = v1::Agent::NewStub(channel_);
}

namespace {

class NoProbeStream final : public ProbeStream {
 public:
  void Cancel() override {}
};

// One Probe call read with gRPC's callback API: no thread is held while samples stream.
class ProbeReader final : public grpc::ClientReadReactor<v1::ProbeSample>, public ProbeStream {
 public:
  ProbeReader(v1::Agent::Stub* stub, const v1::ProbeRequest& request,
              std::function<void(const v1::ProbeSample&)> on_sample,
              std::function<void(const grpc::Status&)> on_done)
      : request_(request), on_sample_(std::move(on_sample)), on_done_(std::move(on_done)) {
    stub->async()->Probe(&ctx_, &request_, this);
    StartRead(&message_);
    StartCall();
  }
  ~ProbeReader() override {
    Cancel();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }
  void Cancel() override { ctx_.TryCancel(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    on_sample_(message_);
    StartRead(&message_);
  }
  void OnDone(const grpc::Status& s) override {
    on_done_(s);
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

 private:
  grpc::ClientContext ctx_;
  v1::ProbeRequest request_;
  v1::ProbeSample message_;
  std::function<void(const v1::ProbeSample&)> on_sample_;
  std::function<void(const grpc::Status&)> on_done_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<ProbeStream> AgentConnection::StartProbe(
    const v1::ProbeRequest& request, std::function<void(const v1::ProbeSample&)> on_sample,
    std::function<void(Status)> on_done) {
  on_done(Unimplemented("this connection to agent " + endpoint().name +
                        " cannot stream probe samples"));
  return std::make_unique<NoProbeStream>();
}

std::unique_ptr<ProbeStream> AgentClient::StartProbe(
    const v1::ProbeRequest& request, std::function<void(const v1::ProbeSample&)> on_sample,
    std::function<void(Status)> on_done) {
  return std::make_unique<ProbeReader>(stub_.get(), request, std::move(on_sample),
                                       [this, on_done = std::move(on_done)](const grpc::Status& s) {
                                         on_done(Convert(s, "Probe"));
                                       });
}

Status AgentClient::Convert(const grpc::Status& s, const char* what) const {
  if (s.ok()) return Status::Ok();
  return FromGrpcStatus(
      s, std::string(what) + " on agent " + endpoint_.name + " (" + endpoint_.address + ")");
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

Result<v1::ListWorkloadsResponse> AgentClient::ListWorkloads(const v1::WorkloadSelector& selector,
                                                             Duration deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  v1::ListWorkloadsRequest req;
  *req.mutable_selector() = selector;
  v1::ListWorkloadsResponse resp;
  auto s = stub_->ListWorkloads(&ctx, req, &resp);
  if (!s.ok()) return Convert(s, "ListWorkloads");
  return resp;
}

void AgentClient::GetInfoAsync(Duration deadline, Done<v1::AgentInfo> done) {
  CallAsync<v1::AgentInfo, v1::GetInfoRequest, v1::AgentInfo>(
      v1::GetInfoRequest(), deadline,
      [this](auto* ctx, auto* req, auto* resp, auto cb) {
        stub_->async()->GetInfo(ctx, req, resp, std::move(cb));
      },
      [](v1::AgentInfo& resp) { return std::move(resp); },
      [this](const grpc::Status& s) { return Convert(s, "GetInfo"); }, std::move(done));
}

void AgentClient::ApplyFaultAsync(const v1::ApplyFaultRequest& request, Duration deadline,
                                  Done<v1::FaultStatus> done) {
  CallAsync<v1::FaultStatus, v1::ApplyFaultRequest, v1::ApplyFaultResponse>(
      request, deadline,
      [this](auto* ctx, auto* req, auto* resp, auto cb) {
        stub_->async()->ApplyFault(ctx, req, resp, std::move(cb));
      },
      [](v1::ApplyFaultResponse& resp) { return std::move(*resp.mutable_fault()); },
      [this](const grpc::Status& s) { return Convert(s, "ApplyFault"); }, std::move(done));
}

void AgentClient::RenewLeaseAsync(const std::string& fault_id, Duration ttl, Duration deadline,
                                  Done<v1::FaultStatus> done) {
  v1::RenewLeaseRequest request;
  request.set_fault_id(fault_id);
  request.set_lease_ttl_ms(ToMs(ttl));
  CallAsync<v1::FaultStatus, v1::RenewLeaseRequest, v1::RenewLeaseResponse>(
      std::move(request), deadline,
      [this](auto* ctx, auto* req, auto* resp, auto cb) {
        stub_->async()->RenewLease(ctx, req, resp, std::move(cb));
      },
      [](v1::RenewLeaseResponse& resp) { return std::move(*resp.mutable_fault()); },
      [this](const grpc::Status& s) { return Convert(s, "RenewLease"); }, std::move(done));
}

void AgentClient::RevertFaultAsync(const std::string& fault_id, Duration deadline,
                                   Done<v1::FaultStatus> done) {
  v1::RevertFaultRequest request;
  request.set_fault_id(fault_id);
  CallAsync<v1::FaultStatus, v1::RevertFaultRequest, v1::RevertFaultResponse>(
      std::move(request), deadline,
      [this](auto* ctx, auto* req, auto* resp, auto cb) {
        stub_->async()->RevertFault(ctx, req, resp, std::move(cb));
      },
      [](v1::RevertFaultResponse& resp) { return std::move(*resp.mutable_fault()); },
      [this](const grpc::Status& s) { return Convert(s, "RevertFault"); }, std::move(done));
}

}  // namespace faultline::engine
