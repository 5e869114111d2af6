#include "controller/engine/recovery_meter.h"

#include <algorithm>
#include <optional>

namespace faultline::engine {

namespace {

// The earliest answer among samples [from, to) of `w`, each widened by its clock mapping's
// error bound (an agent's sample: the true answer instant is at most that much later).
MonoTime EarliestAnswer(const std::vector<const Sample*>& w, size_t from, size_t to) {
  MonoTime best = w[from]->AnsweredAt() + w[from]->clock_error;
  for (size_t k = from + 1; k < to; ++k) {
    best = std::min(best, w[k]->AnsweredAt() + w[k]->clock_error);
  }
  return best;
}

// A sample's send instant as a bracket's lower end: at most its clock error earlier.
MonoTime EarliestSend(const Sample* s) { return s->at - s->clock_error; }

Duration Farthest(Duration point, const Bracket& b) { return std::max(point - b.lo, b.hi - point); }

}  // namespace

RecoveryFigures MeasureRecovery(const std::vector<Sample>& samples, const RecoveryInput& in) {
  RecoveryFigures out;

  // Send order, whatever order the answers came in.
  std::vector<const Sample*> sorted;
  sorted.reserve(samples.size());
  for (const Sample& s : samples) sorted.push_back(&s);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Sample* a, const Sample* b) { return a->at < b->at; });

  // The window is half-open, [start, end): a sample that starts exactly when revert begins
  // already belongs to the next phase.
  std::vector<const Sample*> w;
  const Sample* last_ok_before_window = nullptr;
  for (const Sample* s : sorted) {
    if (s->at < in.start && s->ok) last_ok_before_window = s;
    if (s->at >= in.start && s->at < in.end) w.push_back(s);
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
  const size_t f = *first_failure;
  out.time_to_detect = w[f]->at - in.start;
  // Detection bracket: after the last success sent before F (in the window or before it),
  // before the earliest answer of the failing stretch that starts at F (each of its samples saw
  // the failure, so it had begun by then).
  const Sample* last_ok = last_ok_before_window;
  for (size_t k = 0; k < f; ++k) last_ok = w[k];  // all of w[0, f) succeeded
  if (last_ok != nullptr) {
    size_t stretch_end = f;
    while (stretch_end < w.size() && !w[stretch_end]->ok) ++stretch_end;
    out.detect_bracket =
        Bracket{EarliestSend(last_ok) - in.start, EarliestAnswer(w, f, stretch_end) - in.start};
  }

  // Recovery: the first run of consecutive successes after the first failure whose span reaches
  // stable_for. Only in-window samples count, so a run that would need samples beyond the
  // window end to reach stable_for is not a recovery. A run may only start with a success sent
  // once a failure had answered: answers do not come back in send order, so a success sent
  // earlier may have reached the service before the failure began (a fast success sent just
  // after a slow failure), and would end an outage that had not yet been seen.
  MonoTime failure_known = w[f]->AnsweredAt();
  for (size_t k = f + 1; k < w.size(); ++k) {
    if (!w[k]->ok) failure_known = std::min(failure_known, w[k]->AnsweredAt());
  }
  for (size_t i = f + 1; i < w.size();) {
    if (!w[i]->ok || w[i]->at < failure_known) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < w.size() && w[j + 1]->ok) ++j;
    if (w[j]->at - w[i]->at >= in.stable_for) {
      out.time_to_recover = w[i]->at - in.start;
      // The last failing sample sent before the run (w[f] at least).
      size_t last_failure = i - 1;
      while (w[last_failure]->ok) --last_failure;
      out.recover_bracket =
          Bracket{EarliestSend(w[last_failure]) - in.start, EarliestAnswer(w, i, j + 1) - in.start};
      break;
    }
    i = j + 1;
  }
  if (out.recover_bracket) {
    out.uncertainty = Farthest(*out.time_to_recover, *out.recover_bracket);
  } else if (out.detect_bracket) {
    out.uncertainty = Farthest(*out.time_to_detect, *out.detect_bracket);
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
