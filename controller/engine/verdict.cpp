#include "controller/engine/verdict.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

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

ObjectiveResult DecideObjective(const Objective& o, const VerdictInput& in, bool unknown,
                                std::vector<std::string>& warnings) {
  ObjectiveResult res;
  res.name = o.name;
  res.probe = o.probe;
  res.phase = o.after;
  res.target = o.recover_within;
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
  Duration interval = probe ? probe->interval : Duration(1s);
  res.figures = MeasureRecovery(samples, {start, end, o.stable_for, interval});
  const auto& fig = res.figures;
  const char* from = inject ? "inject" : "revert";
  if (unknown) {
    res.verdict = ObjectiveVerdict::kUnknown;
    res.note = "an agent's fault state is unknown";
  } else if (fig.samples == 0) {
    res.verdict = ObjectiveVerdict::kUnknown;
    res.note = "no probe samples in the window";
  } else if (!fig.time_to_recover) {
    res.verdict = ObjectiveVerdict::kFail;
    res.note = fmt::format("not recovered within the {} window after {} (target {})",
                           Secs(end - start), from, FormatDuration(o.recover_within));
  } else if (fig.no_impact) {
    res.verdict = ObjectiveVerdict::kPass;
    res.note = inject ? std::string(
                            "no impact observed: the probe never failed (did the fault take "
                            "effect? see evidence)")
                      : fmt::format("healthy throughout the {} after revert", Secs(end - start));
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
