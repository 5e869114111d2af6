#include "controller/engine/recovery_meter.h"

#include <algorithm>
#include <optional>

namespace faultline::engine {

RecoveryFigures MeasureRecovery(const std::vector<Sample>& samples, const RecoveryInput& in) {
  RecoveryFigures out;
  out.uncertainty = in.interval;

  // The window is half-open, [start, end): a sample that starts exactly when revert begins
  // already belongs to the next phase.
  std::vector<const Sample*> w;
  for (const Sample& s : samples) {
    if (s.at >= in.start && s.at < in.end) w.push_back(&s);
  }
  out.samples = static_cast<int>(w.size());
  if (w.empty()) {
    // Nothing observed is not "no impact": claiming a recovery without a single sample would
    // turn a broken probe into a PASS. availability stays 1.0 as the header specifies.
    return out;
  }

  int successes = 0;
  std::optional<size_t> first_failure;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i]->ok) {
      ++successes;
    } else {
      ++out.failures;
      if (!first_failure) first_failure = i;
    }
  }
  out.availability = static_cast<double>(successes) / static_cast<double>(w.size());

  // Downtime: each failing stretch lasts from its first failing sample until the next success,
  // or until the window ends when no success follows.
  for (size_t i = 0; i < w.size();) {
    if (w[i]->ok) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < w.size() && !w[j]->ok) ++j;
    MonoTime stretch_end = j < w.size() ? w[j]->at : in.end;
    out.downtime += stretch_end - w[i]->at;
    i = j;
  }

  if (!first_failure) {
    out.no_impact = true;
    out.time_to_recover = Duration(0);
    return out;
  }
  out.time_to_detect = w[*first_failure]->at - in.start;

  // Recovery: the first run of consecutive successes after the first failure whose span reaches
  // stable_for. Only in-window samples count, so a run that would need samples beyond the
  // window end to reach stable_for is not a recovery.
  for (size_t i = *first_failure + 1; i < w.size();) {
    if (!w[i]->ok) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < w.size() && w[j + 1]->ok) ++j;
    if (w[j]->at - w[i]->at >= in.stable_for) {
      out.time_to_recover = w[i]->at - in.start;
      break;
    }
    i = j + 1;
  }
  return out;
}

LatencyPercentiles ComputeLatency(const std::vector<Sample>& samples) {
  std::vector<Duration> lat;
  for (const Sample& s : samples) {
    if (s.ok) lat.push_back(s.latency);
  }
  if (lat.empty()) {
    for (const Sample& s : samples) lat.push_back(s.latency);
  }
  LatencyPercentiles out;
  out.count = static_cast<int>(lat.size());
  if (lat.empty()) return out;
  std::sort(lat.begin(), lat.end());
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  auto rank = [&](int p) {
    size_t r = (static_cast<size_t>(p) * lat.size() + 99) / 100;
    return lat[std::max<size_t>(r, 1) - 1];
  };
  out.p50 = rank(50);
  out.p90 = rank(90);
  out.p99 = rank(99);
  out.max = lat.back();
  return out;
}

}  // namespace faultline::engine
