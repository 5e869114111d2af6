#include "common/probes/open_loop.h"

#include <algorithm>

namespace faultline::probes {

using namespace std::chrono_literals;

namespace {

constexpr int kMinInFlight = 4;
constexpr int kMaxInFlight = 64;

}  // namespace

int MaxInFlight(Duration interval, Duration timeout) {
  const int64_t i = std::max<int64_t>(1, interval.count());
  const int64_t t = std::max<int64_t>(0, timeout.count());
  const int64_t needed = (t + i - 1) / i + 1;
  return static_cast<int>(std::clamp<int64_t>(needed, kMinInFlight, kMaxInFlight));
}

OpenLoopSampler::OpenLoopSampler(Duration interval, int max_in_flight, Clock& clock, Take take,
                                 OnAnswer on_answer, OnSkip on_skip)
    : interval_(std::max<Duration>(interval, 1ms)),
      max_in_flight_(std::max(1, max_in_flight)),
      clock_(clock),
      take_(std::move(take)),
      on_answer_(std::move(on_answer)),
      on_skip_(std::move(on_skip)) {}

OpenLoopSampler::~OpenLoopSampler() { Stop(); }

void OpenLoopSampler::Start() {
  scheduler_ = std::thread([this] { Schedule(); });
}

void OpenLoopSampler::Cancel() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  work_cv_.notify_all();
}

void OpenLoopSampler::Stop() {
  Cancel();
  if (scheduler_.joinable()) scheduler_.join();
  // No scheduler runs now, so no worker is added any more: join them. Each finishes (and
  // reports) the sample it is sending, bounded by its probe's timeout.
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) {
    if (t.joinable()) t.join();
  }
}

void OpenLoopSampler::Schedule() {
  MonoTime next = clock_.Now();
  std::unique_lock lock(mu_);
  while (true) {
    // The schedule is driven by the real steady clock; Clock only timestamps.
    auto wait = next - clock_.Now();
    if (wait > 0ns) cv_.wait_for(lock, wait, [&] { return stop_; });
    if (stop_) return;
    const MonoTime now = clock_.Now();
    if (now < next) continue;  // woken early
    // A slot reached more than an interval late (the machine stalled) is recorded as skipped
    // rather than sent in a bunch with the next one.
    const bool late = now - next > interval_;
    if (late || in_flight_ >= max_in_flight_) {
      if (on_skip_) {
        lock.unlock();
        on_skip_(next);
        lock.lock();
      }
    } else {
      ++in_flight_;
      queue_.push_back(next);
      // Idle workers not yet woken for earlier slots are spoken for: a slot never waits for a
      // worker (workers <= in flight <= the bound).
      if (queue_.size() > static_cast<size_t>(idle_)) {
        workers_.emplace_back([this] { Work(); });
      } else {
        work_cv_.notify_all();
      }
    }
    next += interval_;
  }
}

void OpenLoopSampler::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    --idle_;
    if (stop_) return;  // a slot still queued was never sent: it is no sample
    queue_.pop_front();
    lock.unlock();
    TimedOutcome t;
    t.sent = clock_.Now();
    t.outcome = take_();
    t.answered = clock_.Now();
    if (on_answer_) on_answer_(t);
    lock.lock();
    --in_flight_;
  }
}

}  // namespace faultline::probes
