#include "controller/probes/probe_set.h"

#include <algorithm>

#include "controller/probes/probe_runner.h"

namespace faultline::probes {

using namespace std::chrono_literals;

namespace {

constexpr int kMinInFlight = 4;
constexpr int kMaxInFlight = 64;

}  // namespace

int MaxInFlight(const experiment::Probe& probe) {
  const int64_t interval = std::max<int64_t>(1, probe.interval.count());
  const int64_t timeout = std::max<int64_t>(0, probe.timeout.count());
  const int64_t needed = (timeout + interval - 1) / interval + 1;
  return static_cast<int>(std::clamp<int64_t>(needed, kMinInFlight, kMaxInFlight));
}

ProbeSet::ProbeSet(const std::vector<experiment::Probe>& probes, Clock& clock,
                   SampleCallback on_sample)
    : clock_(clock), on_sample_(std::move(on_sample)) {
  for (const auto& p : probes) {
    auto slot = std::make_unique<Slot>();
    slot->probe = &p;
    slot->record.name = p.name;
    slot->record.interval = p.interval;
    slot->record.max_in_flight = MaxInFlight(p);
    slots_.push_back(std::move(slot));
  }
}

ProbeSet::~ProbeSet() { Stop(); }

void ProbeSet::Start() {
  for (auto& s : slots_) {
    Slot* slot = s.get();
    schedulers_.emplace_back([this, slot] { Schedule(*slot); });
  }
}

void ProbeSet::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  work_cv_.notify_all();
  for (auto& t : schedulers_) {
    if (t.joinable()) t.join();
  }
  schedulers_.clear();
  // No scheduler runs now, so no worker is added any more: join them. Each finishes (and
  // records) the sample it is sending, bounded by its probe's timeout.
  for (auto& s : slots_) {
    for (auto& t : s->workers) {
      if (t.joinable()) t.join();
    }
    s->workers.clear();
  }
}

std::vector<engine::Sample> ProbeSet::Samples(const std::string& name) const {
  std::lock_guard lock(mu_);
  std::vector<engine::Sample> out;
  for (const auto& s : slots_) {
    if (s->record.name != name) continue;
    out.reserve(s->record.samples.size());
    for (const auto& ps : s->record.samples) out.push_back(ps.sample);
  }
  return out;
}

std::optional<ProbeSample> ProbeSet::Last(const std::string& name) const {
  std::lock_guard lock(mu_);
  for (const auto& s : slots_) {
    if (s->record.name == name && !s->record.samples.empty()) return s->record.samples.back();
  }
  return std::nullopt;
}

Duration ProbeSet::Interval(const std::string& name) const {
  for (const auto& s : slots_) {
    if (s->record.name == name) return s->record.interval;
  }
  return 1s;
}

std::vector<ProbeRecord> ProbeSet::Records() const {
  std::lock_guard lock(mu_);
  std::vector<ProbeRecord> out;
  for (const auto& s : slots_) out.push_back(s->record);
  return out;
}

void ProbeSet::Schedule(Slot& slot) {
  const Duration interval = std::max<Duration>(slot.record.interval, 1ms);
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
    const bool late = now - next > interval;
    if (late || slot.in_flight >= slot.record.max_in_flight) {
      slot.record.skipped.push_back(next);
    } else {
      ++slot.in_flight;
      slot.queue.push_back(next);
      // Idle workers not yet woken for earlier slots are spoken for: a slot never waits for a
      // worker (workers <= in flight <= the bound).
      if (slot.queue.size() > static_cast<size_t>(slot.idle)) {
        slot.workers.emplace_back([this, &slot] { Work(slot); });
      } else {
        work_cv_.notify_all();
      }
    }
    next += interval;
  }
}

void ProbeSet::Work(Slot& slot) {
  std::unique_lock lock(mu_);
  while (true) {
    ++slot.idle;
    work_cv_.wait(lock, [&] { return stop_ || !slot.queue.empty(); });
    --slot.idle;
    if (stop_) return;  // a slot still queued was never sent: it is no sample
    slot.queue.pop_front();
    lock.unlock();
    const MonoTime sent = clock_.Now();
    ProbeOutcome outcome = RunProbeOnce(*slot.probe);
    const MonoTime answered = clock_.Now();
    ProbeSample sample{engine::Sample{sent, outcome.ok, outcome.latency, answered},
                       std::move(outcome.detail)};
    lock.lock();
    --slot.in_flight;
    auto& samples = slot.record.samples;
    // Answers arrive in any order; the record stays in send order.
    auto at = std::upper_bound(samples.begin(), samples.end(), sent,
                               [](MonoTime t, const ProbeSample& s) { return t < s.sample.at; });
    samples.insert(at, sample);
    if (on_sample_) {
      lock.unlock();
      on_sample_(slot.record.name, sample);
      lock.lock();
    }
  }
}

}  // namespace faultline::probes
