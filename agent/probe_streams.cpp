#include "agent/probe_streams.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <thread>

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

// Shared by the reactor (until OnDone) and the stream's thread (until its probe ended).
struct ProbeStreams::Stream {
  class Reactor;

  std::string run_id;  // set before the stream is shared
  std::mutex mu;
  std::condition_variable cv;
  Reactor* reactor = nullptr;         // null once gRPC is done with the call
  std::deque<v1::ProbeSample> queue;  // to write
  v1::ProbeSample current;            // being written
  bool writing = false;
  bool closed = false;  // no more samples are written; Finish pending or done
  bool finish_called = false;
  grpc::Status final_status;
  bool stop = false;  // cancel or halt
  std::string stop_reason;

  void Enqueue(v1::ProbeSample sample);
  // Closes the stream with `status`: queued samples are still written unless `drop` is set.
  void Close(const grpc::Status& status, bool drop);
  void RequestStop(const std::string& why) {
    {
      std::lock_guard lock(mu);
      if (stop) return;
      stop = true;
      stop_reason = why;
    }
    cv.notify_all();
  }
  // Under mu: starts the next write or the Finish; returns what to do outside the lock.
  void Pump(std::unique_lock<std::mutex>& lock);
};

class ProbeStreams::Stream::Reactor final : public grpc::ServerWriteReactor<v1::ProbeSample> {
 public:
  explicit Reactor(std::shared_ptr<Stream> stream) : stream_(std::move(stream)) {}
  void OnWriteDone(bool ok) override {
    std::unique_lock lock(stream_->mu);
    stream_->writing = false;
    if (!ok) {  // the caller is gone
      stream_->queue.clear();
      lock.unlock();
      stream_->RequestStop("the caller went away");
      lock.lock();
    }
    stream_->Pump(lock);
  }
  void OnCancel() override { stream_->RequestStop("cancelled by the caller"); }
  void OnDone() override {
    {
      std::lock_guard lock(stream_->mu);
      stream_->reactor = nullptr;
    }
    stream_->RequestStop("done");
    delete this;
  }

 private:
  std::shared_ptr<Stream> stream_;
};

void ProbeStreams::Stream::Pump(std::unique_lock<std::mutex>& lock) {
  if (reactor == nullptr || writing || finish_called) return;
  Reactor* r = reactor;
  if (!queue.empty()) {
    current = std::move(queue.front());
    queue.pop_front();
    writing = true;
    lock.unlock();
    r->StartWrite(&current);
    lock.lock();
    return;
  }
  if (closed) {
    finish_called = true;
    grpc::Status status = final_status;
    lock.unlock();
    r->Finish(status);
    lock.lock();
  }
}

void ProbeStreams::Stream::Enqueue(v1::ProbeSample sample) {
  std::unique_lock lock(mu);
  if (closed || reactor == nullptr) return;
  // A caller that stops reading cannot make the agent hold samples without bound.
  if (queue.size() >= 4096) queue.pop_front();
  queue.push_back(std::move(sample));
  Pump(lock);
}

void ProbeStreams::Stream::Close(const grpc::Status& status, bool drop) {
  std::unique_lock lock(mu);
  if (closed) return;
  closed = true;
  final_status = status;
  if (drop) queue.clear();
  Pump(lock);
}

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
  Duration duration{};
  Result<probes::ProbeSpec> spec =
      probes::ProbeSpecFromRequest(request, options_.allowed_commands, &duration);
  if (!spec.ok()) {
    spdlog::warn("probe request refused (run {}): {}", request.run_id().substr(0, 32),
                 spec.status().message());
    return FinishedProbeStream(ToGrpcStatus(spec.status()));
  }
  auto stream = std::make_shared<Stream>();
  stream->run_id = request.run_id();
  {
    std::lock_guard lock(mu_);
    if (active_ >= options_.max_streams) {
      return FinishedProbeStream(
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       "too many probe streams at once (" + std::to_string(active_) + ")"));
    }
    ++active_;
    std::erase_if(streams_, [](const std::weak_ptr<Stream>& w) { return w.expired(); });
    streams_.push_back(stream);
  }
  auto* reactor = new Stream::Reactor(stream);
  stream->reactor = reactor;
  spdlog::info("probe {} ({}) started for run {}: every {} ms", spec->name,
               probes::ProbeKindName(spec->kind), request.run_id().substr(0, 32),
               request.interval_ms());

  std::thread([this, stream, spec = std::move(*spec), duration] {
    Clock& clock = SystemClock::Instance();
    const int bound = probes::MaxInFlight(spec.interval, spec.timeout);
    v1::ProbeSample started;
    started.set_started(true);
    started.set_max_in_flight(static_cast<uint32_t>(bound));
    stream->Enqueue(started);
    probes::OpenLoopSampler sampler(
        spec.interval, bound, clock, [&spec] { return probes::RunHostProbeOnce(spec); },
        [&stream](const probes::TimedOutcome& t) {
          v1::ProbeSample s;
          s.set_sent_ns(t.sent.count());
          s.set_answered_ns(t.answered.count());
          s.set_ok(t.outcome.ok);
          s.set_latency_us(
              std::chrono::duration_cast<std::chrono::microseconds>(t.outcome.latency).count());
          s.set_detail(t.outcome.detail.substr(0, probes::kMaxProbeDetailBytes));
          stream->Enqueue(std::move(s));
        },
        [&stream](MonoTime slot) {
          v1::ProbeSample s;
          s.set_skipped(true);
          s.set_sent_ns(slot.count());
          stream->Enqueue(std::move(s));
        });
    sampler.Start();
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
      sampler.Cancel();
      stream->Close(grpc::Status(grpc::StatusCode::ABORTED, "probe stopped: " + why), true);
      sampler.Stop();
    } else {
      sampler.Stop();  // the samples in flight answer and are written
      stream->Close(grpc::Status::OK, false);
    }
    spdlog::info("probe {} ended: {}", spec.name, stopped ? why : "duration elapsed");
    std::lock_guard lock(mu_);
    --active_;
    idle_cv_.notify_all();
  }).detach();
  (void)ctx;
  return reactor;
}

}  // namespace faultline::agent
