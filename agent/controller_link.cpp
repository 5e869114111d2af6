#include "agent/controller_link.h"

#include <spdlog/spdlog.h>

#include <random>

#include "common/faultspec/workload_selector.h"

namespace faultline::agent {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

void SetError(v1::CommandResult& result, const Status& s) {
  result.set_code(static_cast<int32_t>(s.code()));
  result.set_message(s.message());
}

}  // namespace

ControllerLink::ControllerLink(FaultManager& manager, const FaultRegistry& registry,
                               AgentIdentity identity, ControllerLinkOptions options)
    : manager_(manager),
      registry_(registry),
      identity_(std::move(identity)),
      options_(std::move(options)),
      executor_(std::make_unique<ApplyExecutor>()) {}

struct ControllerLink::StreamWriter {
  std::mutex mu;
  grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>* stream = nullptr;
  bool closed = false;  // guarded by mu; set before the stream is finished
  bool Write(const v1::AgentMessage& m) {
    std::lock_guard lock(mu);
    return !closed && stream->Write(m);
  }
};

bool ControllerLink::WaitAppliesIdle(std::chrono::milliseconds timeout) {
  return executor_->WaitIdle(timeout);
}

void ControllerLink::ExecuteApplyAsync(const v1::ControllerCommand& command,
                                       std::shared_ptr<StreamWriter> out) {
  // Answered exactly once: by the worker, by a stop cancelling the apply, or by the executor
  // refusing or dropping it.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  auto answer = [out, answered, request_id = command.request_id()](const Status* error,
                                                                   v1::CommandResult* result) {
    if (answered->exchange(true)) return;
    v1::AgentMessage message;
    if (result != nullptr) {
      *message.mutable_result() = std::move(*result);
    } else {
      message.mutable_result()->set_request_id(request_id);
      SetError(*message.mutable_result(), *error);
    }
    out->Write(message);
  };
  bool queued = executor_->Submit(
      [this, command, answer] {
        v1::CommandResult result =
            Execute(command, [answer](const Status& aborted) { answer(&aborted, nullptr); });
        answer(nullptr, &result);
      },
      [answer] {
        Status stopping = Unavailable("the agent is shutting down");
        answer(&stopping, nullptr);
      });
  if (!queued) {
    Status busy =
        ResourceExhausted("too many fault applies in progress on this agent; retry later");
    answer(&busy, nullptr);
  }
}

namespace {

// A probe command's answers: each sample as a ProbeSampleMessage, the end as its CommandResult.
class LinkProbeSink final : public ProbeSink {
 public:
  // `write` sends one message down the stream (false once it is closed).
  LinkProbeSink(std::function<bool(const v1::AgentMessage&)> write, uint64_t request_id)
      : write_(std::move(write)), request_id_(request_id) {}
  void Send(v1::ProbeSample sample) override {
    if (closed_.load()) return;
    v1::AgentMessage m;
    m.mutable_probe_sample()->set_request_id(request_id_);
    *m.mutable_probe_sample()->mutable_sample() = std::move(sample);
    write_(m);
  }
  void Close(const Status& status, bool drop) override {
    (void)drop;  // nothing is queued: every sample was written when it was sent
    if (closed_.exchange(true)) return;
    v1::AgentMessage m;
    m.mutable_result()->set_request_id(request_id_);
    if (!status.ok()) SetError(*m.mutable_result(), status);
    write_(m);
  }

 private:
  std::function<bool(const v1::AgentMessage&)> write_;
  const uint64_t request_id_;
  std::atomic<bool> closed_{false};
};

}  // namespace

bool ControllerLink::StartProbe(const v1::ControllerCommand& command,
                                const std::shared_ptr<StreamWriter>& out,
                                std::map<uint64_t, std::weak_ptr<ProbeStreams::Stream>>& probes) {
  const uint64_t id = command.request_id();
  const std::string what = "run_id=" + command.probe().run_id().substr(0, 32) +
                           " probe=" + command.probe().name().substr(0, 64);
  Result<std::shared_ptr<ProbeStreams::Stream>> started =
      probe_streams_ == nullptr
          ? Result<std::shared_ptr<ProbeStreams::Stream>>(
                Unimplemented("agent-side probes are not enabled on this agent"))
          : probe_streams_->Run(
                command.probe(),
                std::make_shared<LinkProbeSink>(
                    [out](const v1::AgentMessage& m) { return out->Write(m); }, id));
  spdlog::info("audit: action=Probe via=controller:{} {} outcome={}", options_.address, what,
               started.ok() ? std::string("OK") : started.status().message());
  if (started.ok()) {
    std::erase_if(probes, [](const auto& p) { return p.second.expired(); });
    probes[id] = *started;
    return true;
  }
  v1::AgentMessage answer;
  answer.mutable_result()->set_request_id(id);
  SetError(*answer.mutable_result(), started.status());
  return out->Write(answer);
}

void ControllerLink::ListWorkloadsAsync(const v1::ControllerCommand& command,
                                        std::shared_ptr<StreamWriter> out) {
  v1::AgentMessage answer;
  answer.mutable_result()->set_request_id(command.request_id());
  Status refused = Status::Ok();
  if (!workload_lister_) {
    refused = FailedPrecondition("workload discovery is not enabled on this agent");
  } else if (Status st = faultspec::ValidateWorkloadSelector(command.list_workloads().selector());
             !st.ok()) {
    refused = st;
  } else if (workload_lists_in_flight_->fetch_add(1) >= AgentService::kMaxWorkloadListsInFlight) {
    workload_lists_in_flight_->fetch_sub(1);
    refused = ResourceExhausted("too many ListWorkloads calls at once");
  }
  if (!refused.ok()) {
    SetError(*answer.mutable_result(), refused);
    out->Write(answer);
    return;
  }
  // Runtime calls are I/O with deadlines: never on the stream's reader.
  std::thread([lister = workload_lister_, in_flight = workload_lists_in_flight_, out,
               answer = std::move(answer),
               selector = command.list_workloads().selector()]() mutable {
    Result<v1::ListWorkloadsResponse> got = (*lister)(selector);
    if (got.ok()) {
      *answer.mutable_result()->mutable_workloads() = std::move(*got);
    } else {
      SetError(*answer.mutable_result(), got.status());
    }
    in_flight->fetch_sub(1);
    out->Write(answer);
  }).detach();
}

std::unique_ptr<v1::Controller::Stub> ControllerLink::Dial() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  args.SetMaxSendMessageSize(4 << 20);
  // Notice a dead controller (or a cut network) within seconds even while nothing is sent.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A fresh channel with its own subchannel per dial: gRPC's shared subchannels keep their own
  // reconnect backoff (seconds to minutes) and would keep failing calls with the last error long
  // after the controller is back. Loop() does the backoff instead.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::Controller::NewStub(
      grpc::CreateCustomChannel(options_.address, options_.credentials, args));
}

ControllerLink::~ControllerLink() { Stop(); }

void ControllerLink::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void ControllerLink::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (context_) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControllerLink::Loop() {
  std::mt19937 rng(std::random_device{}());
  Duration backoff = options_.min_backoff;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    const MonoTime started = SystemClock::Instance().Now();
    grpc::Status ended = RunStream();
    attached_ = false;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    // A stream that lived a while was healthy: start the backoff over.
    if (SystemClock::Instance().Now() - started > options_.max_backoff) {
      backoff = options_.min_backoff;
    }
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    auto wait = duration_cast<Duration>(backoff * jitter(rng));
    spdlog::warn("controller {}: stream ended ({}: {}); redialling in {}", options_.address,
                 static_cast<int>(ended.error_code()), ended.error_message(), FormatDuration(wait));
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return stop_; });
    backoff = std::min<Duration>(backoff * 2, options_.max_backoff);
  }
}

grpc::Status ControllerLink::RunStream() {
  auto ctx = std::make_shared<grpc::ClientContext>();
  {
    std::lock_guard lock(mu_);
    if (stop_) return grpc::Status::CANCELLED;
    context_ = ctx;
  }
  std::unique_ptr<v1::Controller::Stub> stub = Dial();
  auto stream = stub->Attach(ctx.get());
  // One writer at a time: the reader answering, the heartbeat thread, apply workers.
  auto out = std::make_shared<StreamWriter>();
  out->stream = stream.get();
  auto write = [&out](const v1::AgentMessage& m) { return out->Write(m); };

  v1::AgentMessage hello;
  *hello.mutable_hello()->mutable_info() = DescribeAgent(manager_, registry_, identity_);
  bool ok = write(hello);

  v1::ControllerMessage in;
  std::thread heartbeat;
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool hb_stop = false;
  bool read_ended = false;
  // This stream's probe commands (reader thread only), stopped when the stream ends.
  std::map<uint64_t, std::weak_ptr<ProbeStreams::Stream>> probes;
  if (ok && stream->Read(&in) && in.has_welcome()) {
    attached_ = true;
    Duration interval = milliseconds(std::max<uint32_t>(50, in.welcome().heartbeat_interval_ms()));
    spdlog::info("attached to controller {} (version {}, heartbeat {})", options_.address,
                 in.welcome().controller_version(), FormatDuration(interval));
    heartbeat = std::thread([&, interval] {
      std::unique_lock lock(hb_mu);
      while (!hb_cv.wait_for(lock, interval, [&] { return hb_stop; })) {
        v1::AgentMessage beat;
        beat.mutable_heartbeat()->set_active_faults(static_cast<uint32_t>(manager_.ActiveCount()));
        if (!write(beat)) break;
      }
    });
    while (true) {
      if (!stream->Read(&in)) {
        read_ended = true;
        break;
      }
      if (!in.has_command()) continue;
      if (in.command().kind_case() == v1::ControllerCommand::kApply) {
        ExecuteApplyAsync(in.command(), out);
        continue;
      }
      if (in.command().kind_case() == v1::ControllerCommand::kProbe) {
        if (!StartProbe(in.command(), out, probes)) break;
        continue;
      }
      if (in.command().kind_case() == v1::ControllerCommand::kListWorkloads) {
        ListWorkloadsAsync(in.command(), out);
        continue;
      }
      if (in.command().kind_case() == v1::ControllerCommand::kCancelProbe) {
        auto it = probes.find(in.command().cancel_probe().probe_request_id());
        if (it != probes.end()) {
          if (auto s = it->second.lock()) ProbeStreams::Stop(*s, "cancelled by the controller");
          probes.erase(it);
        }
      }
      if (in.command().kind_case() == v1::ControllerCommand::kRevertAll &&
          probe_streams_ != nullptr) {
        probe_streams_->CancelAll(in.command().revert_all().run_id());  // a halt stops probes too
      }
      v1::AgentMessage answer;
      *answer.mutable_result() = Execute(in.command());
      if (!write(answer)) break;
    }
  }
  {
    std::lock_guard lock(hb_mu);
    hb_stop = true;
  }
  hb_cv.notify_all();
  if (heartbeat.joinable()) heartbeat.join();
  for (auto& [id, weak] : probes) {
    if (auto s = weak.lock()) ProbeStreams::Stop(*s, "the controller's stream ended");
  }
  {
    // Apply workers still running answer nothing from now on: the stream is about to go.
    std::lock_guard lock(out->mu);
    out->closed = true;
  }
  // A stream the controller ended has its status waiting for Finish (e.g. "heartbeat lost");
  // cancelling it first would replace that with CANCELLED.
  if (!read_ended) ctx->TryCancel();
  grpc::Status status = stream->Finish();
  {
    std::lock_guard lock(mu_);
    context_.reset();
  }
  return status;
}

v1::CommandResult ControllerLink::Execute(const v1::ControllerCommand& command,
                                          ApplyCancelledFn on_cancelled) {
  v1::CommandResult result;
  result.set_request_id(command.request_id());
  // Audit: the controller's commands are mutations like the Agent service's.
  auto audit = [&](const char* action, const std::string& what) {
    spdlog::info("audit: action={} via=controller:{} {} outcome={}", action, options_.address, what,
                 result.code() == 0 ? std::string("OK") : result.message());
  };
  switch (command.kind_case()) {
    case v1::ControllerCommand::kApply: {
      auto r = manager_.Apply(command.apply(), std::move(on_cancelled));
      if (r.ok()) {
        *result.mutable_fault() = std::move(r).value();
      } else {
        SetError(result, r.status());
      }
      audit("ApplyFault", "run_id=" + command.apply().run_id() +
                              " fault_id=" + command.apply().fault_id() +
                              " kind=" + FaultKindOf(command.apply().spec()));
      break;
    }
    case v1::ControllerCommand::kRenew: {
      auto r = manager_.Renew(command.renew().fault_id(), command.renew().lease_ttl_ms());
      if (r.ok()) {
        *result.mutable_fault() = std::move(r).value();
      } else {
        SetError(result, r.status());
      }
      break;
    }
    case v1::ControllerCommand::kRevert: {
      auto r = manager_.Revert(command.revert().fault_id(), kRevertReasonRequest);
      if (r.ok()) {
        if (r->has_value()) *result.mutable_fault() = std::move(**r);
      } else {
        SetError(result, r.status());
      }
      audit("RevertFault", "fault_id=" + command.revert().fault_id());
      break;
    }
    case v1::ControllerCommand::kRevertAll: {
      auto r = manager_.RevertAll(command.revert_all().run_id(), kRevertReasonRevertAll);
      if (r.ok()) {
        for (auto& s : *r) *result.mutable_revert_all()->add_reverted() = std::move(s);
      } else {
        SetError(result, r.status());
      }
      audit("RevertAll",
            "run_id=" + (command.revert_all().run_id().empty() ? std::string("*")
                                                               : command.revert_all().run_id()));
      break;
    }
    case v1::ControllerCommand::kList: {
      for (auto& s : manager_.List(command.list().include_reverted())) {
        *result.mutable_list()->add_faults() = std::move(s);
      }
      break;
    }
    case v1::ControllerCommand::kCancelProbe:
      break;  // stopped by the stream's reader (RunStream); OK also for a probe already ended
    case v1::ControllerCommand::kGetInfo:
      *result.mutable_info() = DescribeAgent(manager_, registry_, identity_);
      break;
    default:
      SetError(result, InvalidArgument("unknown command (is this agent older than the "
                                       "controller?)"));
  }
  return result;
}

}  // namespace faultline::agent
