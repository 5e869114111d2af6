#include "controller/daemon/remote_schedule_service.h"

#include "common/grpc_status.h"
#include "controller/daemon/store_proto.h"

namespace faultline::daemon {

namespace {

class RemoteScheduleService final : public schedule::ScheduleService {
 public:
  RemoteScheduleService(std::shared_ptr<v1::Controller::StubInterface> stub, std::string address,
                        std::chrono::milliseconds deadline)
      : stub_(std::move(stub)), address_(std::move(address)), deadline_(deadline) {}

  std::string Describe() const override { return "controller " + address_; }

  Status Add(const store::Schedule& schedule) override {
    grpc::ClientContext ctx;
    Arm(ctx);
    v1::AddScheduleRequest req;
    *req.mutable_schedule() = ScheduleToProto(schedule);
    req.mutable_schedule()->clear_created_unix_ms();
    v1::AddScheduleResponse resp;
    return FromGrpcStatus(stub_->AddSchedule(&ctx, req, &resp), "controller " + address_);
  }

  Status Remove(const std::string& name) override {
    grpc::ClientContext ctx;
    Arm(ctx);
    v1::RemoveScheduleRequest req;
    req.set_name(name);
    v1::RemoveScheduleResponse resp;
    return FromGrpcStatus(stub_->RemoveSchedule(&ctx, req, &resp), "controller " + address_);
  }

  Status SetPaused(const std::string& name, bool paused) override {
    grpc::ClientContext ctx;
    Arm(ctx);
    v1::PauseScheduleRequest req;
    req.set_name(name);
    req.set_paused(paused);
    v1::PauseScheduleResponse resp;
    return FromGrpcStatus(stub_->PauseSchedule(&ctx, req, &resp), "controller " + address_);
  }

  Result<std::vector<store::Schedule>> List() override {
    grpc::ClientContext ctx;
    Arm(ctx);
    v1::ListSchedulesResponse resp;
    if (auto s = stub_->ListSchedules(&ctx, v1::ListSchedulesRequest(), &resp); !s.ok()) {
      return FromGrpcStatus(s, "controller " + address_);
    }
    std::vector<store::Schedule> out;
    for (const auto& p : resp.schedules()) {
      auto s = ScheduleFromProto(p);
      if (!s.ok()) return Internal("controller " + address_ + " sent " + s.status().message());
      out.push_back(std::move(*s));
    }
    return out;
  }

  Result<std::vector<store::Firing>> Firings(const std::string& name, int limit) override {
    grpc::ClientContext ctx;
    Arm(ctx);
    v1::ListFiringsRequest req;
    req.set_name(name);
    req.set_limit(limit > 0 ? static_cast<uint32_t>(limit) : 0);
    v1::ListFiringsResponse resp;
    if (auto s = stub_->ListFirings(&ctx, req, &resp); !s.ok())
      return FromGrpcStatus(s, "controller " + address_);
    std::vector<store::Firing> out;
    for (const auto& f : resp.firings()) out.push_back(FiringFromProto(f));
    return out;
  }

 private:
  void Arm(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  }

  std::shared_ptr<v1::Controller::StubInterface> stub_;
  std::string address_;
  std::chrono::milliseconds deadline_;
};

}  // namespace

std::unique_ptr<schedule::ScheduleService> MakeRemoteScheduleService(
    std::shared_ptr<v1::Controller::StubInterface> stub, std::string address,
    std::chrono::milliseconds deadline) {
  return std::make_unique<RemoteScheduleService>(std::move(stub), std::move(address), deadline);
}

}  // namespace faultline::daemon
