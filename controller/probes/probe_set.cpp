#include "controller/probes/probe_set.h"

#include "controller/probes/probe_runner.h"

namespace faultline::probes {

using namespace std::chrono_literals;

ProbeSet::ProbeSet(const std::vector<experiment::Probe>& probes, Clock& clock,
                   SampleCallback on_sample)
    : clock_(clock), on_sample_(std::move(on_sample)) {
  for (const auto& p : probes) {
    auto slot = std::make_unique<Slot>();
    slot->probe = &p;
    slot->record.name = p.name;
    slot->record.interval = p.interval;
    slots_.push_back(std::move(slot));
  }
}

ProbeSet::~ProbeSet() { Stop(); }

void ProbeSet::Start() {
  for (auto& s : slots_) {
    Slot* slot = s.get();
    threads_.emplace_back([this, slot] { Loop(*slot); });
  }
}

void ProbeSet::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
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

void ProbeSet::Loop(Slot& slot) {
  MonoTime next = clock_.Now();
  while (true) {
    {
      std::unique_lock lock(mu_);
      // The probe schedule is driven by the real steady clock; Clock only timestamps.
      auto wait = next - clock_.Now();
      if (wait > 0ns) {
        cv_.wait_for(lock, wait, [&] { return stop_; });
      }
      if (stop_) return;
    }
    MonoTime at = clock_.Now();
    auto outcome = RunProbeOnce(*slot.probe);
    // A PromQL sample describes the query's evaluation instant, which lies within the attempt.
    ProbeSample sample{
        engine::Sample{outcome.observed_at.value_or(at), outcome.ok, outcome.latency},
        outcome.detail};
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      slot.record.samples.push_back(sample);
    }
    if (on_sample_) on_sample_(slot.record.name, sample);
    next += slot.record.interval;
    // A probe slower than its interval skips the slots it overran instead of bunching up.
    MonoTime now = clock_.Now();
    if (next < now) next = now;
  }
}

}  // namespace faultline::probes
