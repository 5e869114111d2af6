#include "controller/engine/verdict.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

namespace faultline::engine {

using experiment::Objective;
using namespace std::chrono_literals;

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "PASS";
    case Verdict::kFail:
      return "FAIL";
    case Verdict::kAborted:
      return "ABORTED";
    case Verdict::kError:
      return "ERROR";
  }
  return "ERROR";
}

const char* ObjectiveVerdictName(ObjectiveVerdict v) {
  switch (v) {
    case ObjectiveVerdict::kPass:
      return "PASS";
    case ObjectiveVerdict::kFail:
      return "FAIL";
    case ObjectiveVerdict::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

int ExitCodeFor(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return 0;
    case Verdict::kFail:
      return 1;
    case Verdict::kAborted:
      return 3;
    case Verdict::kError:
      return 4;
  }
  return 4;
}

namespace {

std::string Secs(Duration d) { return fmt::format("{:.2f}s", ToSeconds(d)); }

const ProbeRecord* FindProbe(std::span<const ProbeRecord> probes, const std::string& name) {
  for (const auto& p : probes) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// Judges `fig`'s recovery against `recover_within` (the rules in verdict.h).
void JudgeRecovery(const Objective& o, const RecoveryFigures& fig, Duration window,
                   const char* from, std::vector<std::string>& warnings, ObjectiveResult& res) {
  const bool inject = o.after == Objective::Phase::kInject;
  if (!fig.time_to_recover) {
    res.verdict = ObjectiveVerdict::kFail;
    res.note = fmt::format("not recovered within the {} window after {} (target {})", Secs(window),
                           from, FormatDuration(o.recover_within));
  } else if (fig.no_impact) {
    res.verdict = ObjectiveVerdict::kPass;
    res.note = inject ? std::string(
                            "no impact observed: the probe never failed (did the fault take "
                            "effect? see evidence)")
                      : fmt::format("healthy throughout the {} after revert", Secs(window));
    if (inject) warnings.push_back("objective " + o.name + ": no impact observed during the fault");
  } else {
    // A recovery always carries its bracket; the point is the fallback for a figure without.
    Bracket b = fig.recover_bracket.value_or(Bracket{*fig.time_to_recover, *fig.time_to_recover});
    const std::string where = fmt::format("recovered {} after {} (truth in [{}, {}])",
                                          Secs(*fig.time_to_recover), from, Secs(b.lo), Secs(b.hi));
    if (b.hi <= o.recover_within) {
      res.verdict = ObjectiveVerdict::kPass;
      res.note = fmt::format("{} (target {})", where, FormatDuration(o.recover_within));
    } else if (b.lo > o.recover_within) {
      res.verdict = ObjectiveVerdict::kFail;
      res.note =
          fmt::format("{}, slower than the {} target", where, FormatDuration(o.recover_within));
    } else {
      res.verdict = ObjectiveVerdict::kFail;
      res.inconclusive = true;
      res.note = fmt::format(
          "inconclusive, failed safe: {}, and the {} target lies inside that bracket; a shorter "
          "probe interval or timeout narrows it",
          where, FormatDuration(o.recover_within));
    }
  }
}

// Judges detection against `detect_within`: the bracket's upper end is the first failing
// sample's answer (the instant the probe knew), found in `samples` (sorted by send).
void JudgeDetection(const Objective& o, const RecoveryFigures& fig,
                    const std::vector<Sample>& samples, MonoTime start, MonoTime end,
                    ObjectiveResult& res) {
  const Duration x = o.detect_within;
  if (!fig.time_to_detect) {
    res.verdict = ObjectiveVerdict::kFail;
    res.note = fmt::format(
        "not detected: the probe never failed in the {} fault window (target {}; did the fault "
        "take effect? see evidence)",
        Secs(end - start), FormatDuration(x));
    return;
  }
  std::optional<Duration> lo;
  Duration hi = *fig.time_to_detect;
  if (fig.detect_bracket) {
    lo = fig.detect_bracket->lo;
    hi = fig.detect_bracket->hi;
  } else {
    for (const Sample& s : samples) {
      if (!s.ok && s.at >= start && s.at < end) {
        hi = s.AnsweredAt() - start;
        break;
      }
    }
  }
  const std::string where =
      fmt::format("impact noticed by the probe {} after inject (truth in [{}, {}])",
                  Secs(*fig.time_to_detect), lo ? Secs(*lo) : std::string("?"), Secs(hi));
  if (hi <= x) {
    res.verdict = ObjectiveVerdict::kPass;
    res.note = fmt::format("{} (target {})", where, FormatDuration(x));
  } else if (lo && *lo > x) {
    res.verdict = ObjectiveVerdict::kFail;
    res.note = fmt::format("{}, later than the {} target", where, FormatDuration(x));
  } else {
    res.verdict = ObjectiveVerdict::kFail;
    res.inconclusive = true;
    res.note = fmt::format(
        "inconclusive, failed safe: {}, and the {} target lies inside that bracket{}", where,
        FormatDuration(x),
        lo ? "; a shorter probe interval or timeout narrows it"
           : " (no successful sample before the failure, so its start is not bracketed)");
  }
}

// Availability over the window: good samples / schedule slots (verdict.h, AvailabilityFigure).
void JudgeAvailability(const Objective& o, const std::vector<Sample>& samples,
                       const ProbeRecord* probe, MonoTime start, MonoTime end,
                       ObjectiveResult& res) {
  AvailabilityFigure a;
  a.min = o.availability_min;
  for (const Sample& s : samples) {
    if (s.at < start || s.at >= end) continue;
    ++a.slots;
    a.good += s.ok;
  }
  if (probe) {
    for (MonoTime t : probe->skipped) {
      if (t >= start && t < end) ++a.skipped, ++a.slots;
    }
  }
  a.measured = a.slots > 0 ? static_cast<double>(a.good) / a.slots : 0.0;
  const std::string what = fmt::format(
      "{:.2f}% of the fault window's samples good ({} of {}{})", a.measured * 100, a.good, a.slots,
      a.skipped ? fmt::format(", {} skipped slot(s) counted as not good", a.skipped) : "");
  // good/slots >= min, compared without the division's rounding.
  if (static_cast<double>(a.good) >= a.min * a.slots - 1e-9) {
    res.verdict = ObjectiveVerdict::kPass;
    res.note = fmt::format("{} (at least {:g}% required)", what, a.min * 100);
  } else {
    res.verdict = ObjectiveVerdict::kFail;
    res.note = fmt::format("{}, below the {:g}% required", what, a.min * 100);
  }
  res.availability = a;
}

// Latency percentile of the successful samples sent in the window.
void JudgeLatency(const Objective& o, const std::vector<Sample>& samples, MonoTime start,
                  MonoTime end, ObjectiveResult& res) {
  LatencyFigure l;
  l.limit = o.latency;
  std::vector<Duration> lat;
  for (const Sample& s : samples) {
    if (s.at < start || s.at >= end) continue;
    if (s.ok) {
      lat.push_back(s.latency);
    } else {
      ++l.failures;
    }
  }
  l.samples = static_cast<int>(lat.size());
  const std::string pname = fmt::format("p{:g}", o.latency.percentile);
  if (l.samples < o.latency.min_samples || lat.empty()) {
    res.verdict = ObjectiveVerdict::kFail;
    res.inconclusive = true;
    res.note = fmt::format(
        "inconclusive, failed safe: {} successful sample(s) in the fault window ({} failed), "
        "fewer than the {} a {} needs; a shorter probe interval or a longer fault gives more",
        l.samples, l.failures, o.latency.min_samples, pname);
  } else {
    std::sort(lat.begin(), lat.end());
    // Nearest rank: the smallest value with at least N% of the values at or below it.
    double rank = std::ceil(o.latency.percentile / 100.0 * static_cast<double>(lat.size()) - 1e-9);
    size_t r = std::clamp<size_t>(static_cast<size_t>(rank), 1, lat.size());
    l.measured = lat[r - 1];
    const std::string what =
        fmt::format("{} {:.1f}ms over {} successful samples ({} failed, not counted)", pname,
                    ToSeconds(*l.measured) * 1000, l.samples, l.failures);
    if (*l.measured < o.latency.below) {
      res.verdict = ObjectiveVerdict::kPass;
      res.note = fmt::format("{}, below {}", what, FormatDuration(o.latency.below));
    } else {
      res.verdict = ObjectiveVerdict::kFail;
      res.note = fmt::format("{}, not below {}", what, FormatDuration(o.latency.below));
    }
  }
  res.latency = l;
}

Duration TargetOf(const Objective& o) {
  switch (o.kind) {
    case Objective::Kind::kRecover:
      return o.recover_within;
    case Objective::Kind::kDetect:
      return o.detect_within;
    case Objective::Kind::kLatency:
      return o.latency.below;
    case Objective::Kind::kAvailability:
      return Duration{};
  }
  return Duration{};
}

ObjectiveResult DecideObjective(const Objective& o, const VerdictInput& in, bool unknown,
                                std::vector<std::string>& warnings) {
  ObjectiveResult res;
  res.name = o.name;
  res.probe = o.probe;
  res.kind = o.kind;
  res.phase = o.after;
  res.target = TargetOf(o);
  res.stable_for = o.stable_for;
  const bool inject = o.after == Objective::Phase::kInject;
  if (inject && !in.t_inject) {
    res.note = "the fault was never in effect on every target";
    return res;
  }
  MonoTime start, end;
  if (inject) {
    start = *in.t_inject;
    end = in.t_revert_start.value_or(in.end_of_observation);
  } else {
    start = in.t_revert.value_or(in.end_of_observation);
    end = in.end_of_observation;
  }
  const ProbeRecord* probe = FindProbe(in.probes, o.probe);
  std::vector<Sample> samples;
  if (probe) {
    samples.reserve(probe->samples.size());
    for (const auto& ps : probe->samples) samples.push_back(ps.sample);
  }
  std::stable_sort(samples.begin(), samples.end(),
                   [](const Sample& a, const Sample& b) { return a.at < b.at; });
  Duration interval = probe ? probe->interval : Duration(1s);
  res.figures = MeasureRecovery(samples, {start, end, o.stable_for, interval});
  const auto& fig = res.figures;
  if (unknown) {
    res.verdict = ObjectiveVerdict::kUnknown;
    res.note = "an agent's fault state is unknown";
    return res;
  }
  if (fig.samples == 0) {
    res.verdict = ObjectiveVerdict::kUnknown;
    res.note = "no probe samples in the window";
    return res;
  }
  switch (o.kind) {
    case Objective::Kind::kRecover:
      JudgeRecovery(o, fig, end - start, inject ? "inject" : "revert", warnings, res);
      break;
    case Objective::Kind::kDetect:
      JudgeDetection(o, fig, samples, start, end, res);
      break;
    case Objective::Kind::kAvailability:
      JudgeAvailability(o, samples, probe, start, end, res);
      break;
    case Objective::Kind::kLatency:
      JudgeLatency(o, samples, start, end, res);
      break;
  }
  return res;
}

}  // namespace

VerdictOutcome DecideVerdict(const VerdictInput& in) {
  VerdictOutcome out;
  const bool unknown = std::any_of(in.faults.begin(), in.faults.end(),
                                   [](const FaultOnAgent& f) { return f.state_unknown; });
  for (const auto& o : in.objectives) {
    out.objectives.push_back(DecideObjective(o, in, unknown, out.warnings));
  }
  if (unknown) {
    out.verdict = Verdict::kError;
    out.reason = "an agent's fault state is unknown (see faults); no recovery is claimed";
    return out;
  }
  if (in.aborted) {
    out.verdict = Verdict::kAborted;
    out.reason = in.abort_reason;
    return out;
  }
  for (const auto& o : out.objectives) {
    if (o.verdict != ObjectiveVerdict::kPass) {
      out.verdict = Verdict::kFail;
      out.reason = "objective " + o.name + " missed: " + o.note;
      return out;
    }
  }
  out.verdict = Verdict::kPass;
  out.reason = "every objective met";
  return out;
}

}  // namespace faultline::engine
