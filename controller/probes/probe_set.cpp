#include "controller/probes/probe_set.h"

#include <algorithm>

#include "controller/probes/probe_runner.h"

namespace faultline::probes {

using namespace std::chrono_literals;

int MaxInFlight(const experiment::Probe& probe) {
  return MaxInFlight(probe.interval, probe.timeout);
}

ProbeSet::ProbeSet(const std::vector<experiment::Probe>& probes, Clock& clock,
                   SampleCallback on_sample)
    : clock_(clock), on_sample_(std::move(on_sample)) {
  for (const auto& p : probes) {
    auto slot = std::make_unique<Slot>();
    slot->probe = &p;
    slot->record.name = p.name;
    slot->record.from = p.from;
    slot->record.interval = p.interval;
    slot->record.max_in_flight = MaxInFlight(p);
    if (p.from == "controller") {
      Slot* s = slot.get();
      slot->sampler = std::make_unique<OpenLoopSampler>(
          p.interval, slot->record.max_in_flight, clock_, [s] { return RunProbeOnce(*s->probe); },
          [this, s](const TimedOutcome& t) {
            Record(*s,
                   ProbeSample{engine::Sample{t.sent, t.outcome.ok, t.outcome.latency, t.answered},
                               t.outcome.detail,
                               {}});
          },
          [this, s](MonoTime slot_at) {
            std::lock_guard lock(mu_);
            s->record.skipped.push_back(slot_at);
          });
    }
    slots_.push_back(std::move(slot));
  }
}

ProbeSet::~ProbeSet() { Stop(); }

void ProbeSet::Start() {
  for (auto& s : slots_) {
    if (s->sampler) s->sampler->Start();
  }
}

void ProbeSet::Stop() {
  for (auto& s : slots_) {
    if (s->sampler) s->sampler->Cancel();
  }
  for (auto& s : slots_) {
    if (s->sampler) s->sampler->Stop();
  }
  std::lock_guard lock(mu_);
  stopped_ = true;
}

ProbeSet::Slot* ProbeSet::Find(const std::string& name) {
  for (auto& s : slots_) {
    if (s->record.name == name) return s.get();
  }
  return nullptr;
}

void ProbeSet::Record(Slot& slot, const ProbeSample& sample) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    auto& samples = slot.record.samples;
    // Answers arrive in any order; the record stays in send order.
    auto at = std::upper_bound(samples.begin(), samples.end(), sample.sample.at,
                               [](MonoTime t, const ProbeSample& s) { return t < s.sample.at; });
    samples.insert(at, sample);
  }
  if (on_sample_) on_sample_(slot.record.name, sample);
}

void ProbeSet::AddRemote(const std::string& name, const ProbeSample& sample) {
  Slot* slot = Find(name);
  if (slot == nullptr || slot->sampler) return;
  Record(*slot, sample);
}

void ProbeSet::AddRemoteSkip(const std::string& name, MonoTime slot_at) {
  Slot* slot = Find(name);
  if (slot == nullptr || slot->sampler) return;
  std::lock_guard lock(mu_);
  if (!stopped_) slot->record.skipped.push_back(slot_at);
}

void ProbeSet::SetSites(const std::string& name, std::vector<ProbeSite> sites) {
  Slot* slot = Find(name);
  if (slot == nullptr) return;
  std::lock_guard lock(mu_);
  slot->record.sites = std::move(sites);
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

}  // namespace faultline::probes
