#include "agent/probe_streams.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <optional>
#include <thread>

#include "agent/host/netns_thread.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/probes/open_loop.h"
#include "common/probes/probe_request.h"
#include "common/probes/probe_runner.h"

namespace faultline::agent {

namespace {

class Refusal final : public grpc::ServerWriteReactor<v1::ProbeSample> {
 public:
  explicit Refusal(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::ProbeSample>* FinishedProbeStream(const grpc::Status& status) {
  return new Refusal(status);
}

// One stream's control, shared by its sink (a reactor's cancel) and its probe thread.
struct ProbeStreams::Stream {
  std::string run_id;  // set before the stream is shared
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // cancel or halt
  std::string stop_reason;

  void RequestStop(const std::string& why) {
    {
      std::lock_guard lock(mu);
      if (stop) return;
      stop = true;
      stop_reason = why;
    }
    cv.notify_all();
  }
};

void ProbeStreams::Stop(Stream& stream, const std::string& why) { stream.RequestStop(why); }

namespace {

// The Probe RPC's side: a write reactor fed from a bounded queue. Shared by the reactor (until
// OnDone) and the stream's thread (until its probe ended).
class GrpcProbeSink final : public ProbeSink, public std::enable_shared_from_this<GrpcProbeSink> {
 public:
  class Reactor final : public grpc::ServerWriteReactor<v1::ProbeSample> {
   public:
    explicit Reactor(std::shared_ptr<GrpcProbeSink> sink) : sink_(std::move(sink)) {}
    void OnWriteDone(bool ok) override {
      std::unique_lock lock(sink_->mu_);
      sink_->writing_ = false;
      if (!ok) {  // the caller is gone
        sink_->queue_.clear();
        lock.unlock();
        sink_->StopStream("the caller went away");
        lock.lock();
      }
      sink_->Pump(lock);
    }
    void OnCancel() override { sink_->StopStream("cancelled by the caller"); }
    void OnDone() override {
      {
        std::lock_guard lock(sink_->mu_);
        sink_->reactor_ = nullptr;
      }
      sink_->StopStream("done");
      delete this;
    }

   private:
    std::shared_ptr<GrpcProbeSink> sink_;
  };

  // The reactor to hand to gRPC (owned by gRPC until OnDone).
  Reactor* MakeReactor() {
    auto* r = new Reactor(shared_from_this());
    reactor_ = r;
    return r;
  }
  void SetStream(std::weak_ptr<ProbeStreams::Stream> stream) {
    std::lock_guard lock(mu_);
    stream_ = std::move(stream);
  }

  void Send(v1::ProbeSample sample) override {
    std::unique_lock lock(mu_);
    if (closed_ || reactor_ == nullptr) return;
    // A caller that stops reading cannot make the agent hold samples without bound.
    if (queue_.size() >= 4096) queue_.pop_front();
    queue_.push_back(std::move(sample));
    Pump(lock);
  }
  void Close(const Status& status, bool drop) override {
    std::unique_lock lock(mu_);
    if (closed_) return;
    closed_ = true;
    final_status_ = ToGrpcStatus(status);
    if (drop) queue_.clear();
    Pump(lock);
  }

 private:
  void StopStream(const std::string& why) {
    std::shared_ptr<ProbeStreams::Stream> s;
    {
      std::lock_guard lock(mu_);
      s = stream_.lock();
    }
    if (s) ProbeStreams::Stop(*s, why);
  }
  // Under mu_: starts the next write or the Finish.
  void Pump(std::unique_lock<std::mutex>& lock) {
    if (reactor_ == nullptr || writing_ || finish_called_) return;
    Reactor* r = reactor_;
    if (!queue_.empty()) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      lock.unlock();
      r->StartWrite(&current_);
      lock.lock();
      return;
    }
    if (closed_) {
      finish_called_ = true;
      grpc::Status status = final_status_;
      lock.unlock();
      r->Finish(status);
      lock.lock();
    }
  }

  std::mutex mu_;
  Reactor* reactor_ = nullptr;         // null once gRPC is done with the call
  std::deque<v1::ProbeSample> queue_;  // to write
  v1::ProbeSample current_;            // being written
  bool writing_ = false;
  bool closed_ = false;  // no more samples are queued; Finish pending or done
  bool finish_called_ = false;
  grpc::Status final_status_;
  std::weak_ptr<ProbeStreams::Stream> stream_;
};

}  // namespace

ProbeStreams::ProbeStreams(ProbeStreamOptions options) : options_(std::move(options)) {}

ProbeStreams::~ProbeStreams() {
  CancelAll();
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return active_ == 0; });
}

int ProbeStreams::Active() const {
  std::lock_guard lock(mu_);
  return active_;
}

bool ProbeStreams::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return active_ == 0; });
}

void ProbeStreams::CancelAll(const std::string& run_id) {
  std::vector<std::shared_ptr<Stream>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& w : streams_) {
      auto s = w.lock();
      if (s && (run_id.empty() || s->run_id == run_id)) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->RequestStop("halt");
}

grpc::ServerWriteReactor<v1::ProbeSample>* ProbeStreams::Start(grpc::CallbackServerContext* ctx,
                                                               const v1::ProbeRequest& request) {
  (void)ctx;
  auto sink = std::make_shared<GrpcProbeSink>();
  auto* reactor = sink->MakeReactor();
  Result<std::shared_ptr<Stream>> stream = Run(request, sink);
  if (!stream.ok()) {
    // Never handed to gRPC: the sink was not used, the reactor goes with a refusal instead.
    delete reactor;
    return FinishedProbeStream(ToGrpcStatus(stream.status()));
  }
  sink->SetStream(*stream);
  return reactor;
}

namespace {

// The one workload `selector` names on this host, through the agent's discovery.
Result<workloads::Workload> ResolveProbeWorkload(const ProbeWorkloadLister& list,
                                                 const v1::WorkloadSelector& selector) {
  if (!list) {
    return FailedPrecondition("workload discovery is not enabled on this agent");
  }
  Result<std::vector<workloads::Workload>> found = list(selector);
  if (!found.ok()) return found.status();
  if (found->empty()) {
    return NotFound("no workload on this host matches " + selector.ShortDebugString());
  }
  if (found->size() > 1) {
    return FailedPrecondition("a probe runs in one workload; " + std::to_string(found->size()) +
                              " match " + selector.ShortDebugString());
  }
  return std::move(found->front());
}

}  // namespace

Result<std::shared_ptr<ProbeStreams::Stream>> ProbeStreams::Run(const v1::ProbeRequest& request,
                                                                std::shared_ptr<ProbeSink> sink) {
  Duration duration{};
  Result<probes::ProbeSpec> spec =
      probes::ProbeSpecFromRequest(request, options_.allowed_commands, &duration);
  if (!spec.ok()) {
    spdlog::warn("probe request refused (run {}): {}", request.run_id().substr(0, 32),
                 spec.status().message());
    return spec.status();
  }
  auto stream = std::make_shared<Stream>();
  stream->run_id = request.run_id();
  {
    std::lock_guard lock(mu_);
    if (active_ >= options_.max_streams) {
      return ResourceExhausted("too many probe streams at once (" + std::to_string(active_) + ")");
    }
    ++active_;
    std::erase_if(streams_, [](const std::weak_ptr<Stream>& w) { return w.expired(); });
    streams_.push_back(stream);
  }
  std::optional<v1::WorkloadSelector> in_workload;
  if (request.has_workload()) in_workload = request.workload();
  spdlog::info("probe {} ({}) started for run {}: every {} ms{}", spec->name,
               probes::ProbeKindName(spec->kind), request.run_id().substr(0, 32),
               request.interval_ms(),
               in_workload ? " in workload " + in_workload->ShortDebugString() : "");

  std::thread([this, stream, sink, spec = std::move(*spec), duration, in_workload]() mutable {
    Clock& clock = SystemClock::Instance();
    auto finished = [this] {
      std::lock_guard lock(mu_);
      --active_;
      idle_cv_.notify_all();
    };
    // Inside a workload: resolved here (runtime calls are I/O, never on a callback thread).
    std::shared_ptr<host::NetnsThread> netns;
    if (in_workload) {
      Result<workloads::Workload> w = ResolveProbeWorkload(options_.list_workloads, *in_workload);
      Result<std::shared_ptr<host::NetnsThread>> entered =
          w.ok() ? host::NetnsThread::Open(w->netns_path, w->netns)
                 : Result<std::shared_ptr<host::NetnsThread>>(w.status());
      if (!entered.ok()) {
        spdlog::warn("probe {} refused: its workload: {}", spec.name, entered.status().message());
        sink->Close(Status(entered.status().code(), "workload: " + entered.status().message()),
                    true);
        finished();
        return;
      }
      netns = std::move(entered).value();
      if (spec.kind == probes::ProbeSpec::Kind::kDns && spec.dns.server.empty() &&
          !w->pids.empty()) {
        spec.dns.resolv_conf = "/proc/" + std::to_string(w->pids.front()) + "/root/etc/resolv.conf";
      }
      spdlog::info("probe {} runs in {} {} (netns {})", spec.name,
                   workloads::WorkloadKindName(w->kind), w->name, w->netns_path);
    }
    const int bound = probes::MaxInFlight(spec.interval, spec.timeout);
    v1::ProbeSample started;
    started.set_started(true);
    started.set_max_in_flight(static_cast<uint32_t>(bound));
    sink->Send(started);
    auto sampler = std::make_shared<probes::OpenLoopSampler>(
        spec.interval, bound, clock, [&spec] { return probes::RunHostProbeOnce(spec); },
        [&sink](const probes::TimedOutcome& t) {
          v1::ProbeSample s;
          s.set_sent_ns(t.sent.count());
          s.set_answered_ns(t.answered.count());
          s.set_ok(t.outcome.ok);
          s.set_latency_us(
              std::chrono::duration_cast<std::chrono::microseconds>(t.outcome.latency).count());
          s.set_detail(t.outcome.detail.substr(0, probes::kMaxProbeDetailBytes));
          sink->Send(std::move(s));
        },
        [&sink](MonoTime slot) {
          v1::ProbeSample s;
          s.set_skipped(true);
          s.set_sent_ns(slot.count());
          sink->Send(std::move(s));
        });
    if (netns) {
      // The sampler's threads are made by the thread that starts it: inside the namespace.
      Status entered = netns->Run([sampler] {
        sampler->Start();
        return Status::Ok();
      });
      if (!entered.ok()) {
        sampler->Stop();
        sink->Close(Status(entered.code(), "workload: " + entered.message()), true);
        finished();
        return;
      }
    } else {
      sampler->Start();
    }
    bool stopped;
    std::string why;
    {
      std::unique_lock lock(stream->mu);
      auto pred = [&] { return stream->stop; };
      if (duration > Duration::zero()) {
        stream->cv.wait_for(lock, duration, pred);
      } else {
        stream->cv.wait(lock, pred);
      }
      stopped = stream->stop;
      why = stream->stop_reason;
    }
    if (stopped) {
      // Cancel or halt: nothing more is sent, and the call ends now; samples in flight end in
      // the background (bounded by the timeout) and are not written.
      sampler->Cancel();
      sink->Close(Status(StatusCode::kAborted, "probe stopped: " + why), true);
      sampler->Stop();
    } else {
      sampler->Stop();  // the samples in flight answer and are written
      sink->Close(Status::Ok(), false);
    }
    spdlog::info("probe {} ended: {}", spec.name, stopped ? why : "duration elapsed");
    finished();
  }).detach();
  return stream;
}

}  // namespace faultline::agent
