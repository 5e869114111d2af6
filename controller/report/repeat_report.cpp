#include "controller/report/repeat_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/duration.h"
#include "controller/report/markup.h"

namespace faultline::report {

using json = nlohmann::json;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

const ObjectiveRow* FindObjective(const ReportModel& m, const std::string& name) {
  for (const auto& o : m.objectives) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

// Median by the definition in the header (mean of the middle two for even n).
double MedianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  if (n % 2 == 1) return v[n / 2];
  double a = v[n / 2 - 1], b = v[n / 2];
  if (std::isinf(a) || std::isinf(b)) return std::max(a, b);
  return (a + b) / 2;
}

json Opt(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

json DistJson(const std::optional<Distribution>& d) {
  if (!d) return nullptr;
  return {{"count", d->count},
          {"min", d->min},
          {"median", d->median},
          {"p95", d->p95},
          {"max", d->max}};
}

std::string Secs(double s) { return std::isfinite(s) ? fmt::format("{:.2f}s", s) : "never"; }

std::string DistText(const std::optional<Distribution>& d, int runs) {
  if (!d) return fmt::format("not reached in any of {} run(s)", runs);
  return fmt::format("median {} p95 {} min {} max {} ({} of {} run(s))", Secs(d->median),
                     Secs(d->p95), Secs(d->min), Secs(d->max), d->count, runs);
}

int Severity(const std::string& verdict) {
  if (verdict == "ABORTED") return 4;
  if (verdict == "ERROR") return 3;
  if (verdict == "FAIL") return 2;
  return verdict == "PASS" ? 0 : 3;  // anything unknown counts as an error
}

std::string S(std::string_view s) { return StripTerminalControls(s, false); }

}  // namespace

std::optional<Bracket> RecoveryBracket(const ObjectiveRow& o) {
  if (!o.time_to_recover_s) return std::nullopt;
  if (o.recover_bracket) return Bracket{o.recover_bracket->lo_s, o.recover_bracket->hi_s};
  double t = *o.time_to_recover_s;
  double u = std::isfinite(o.uncertainty_s) ? std::fabs(o.uncertainty_s) : 0;
  return Bracket{std::max(0.0, t - u), t + u};
}

std::optional<Distribution> Distribute(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  Distribution d;
  d.count = static_cast<int>(n);
  d.min = values.front();
  d.max = values.back();
  d.median = MedianOf(values);
  // Nearest rank: the ceil(0.95 n)-th smallest (1-based).
  size_t rank = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(n)));
  d.p95 = values[std::clamp<size_t>(rank, 1, n) - 1];
  return d;
}

Result<Tolerance> ParseTolerance(std::string_view text) {
  Tolerance t;
  t.text = std::string(text);
  if (text == "0") return t;
  if (!text.empty() && text.back() == '%') {
    std::string num(text.substr(0, text.size() - 1));
    char* end = nullptr;
    double p = num.empty() ? -1 : std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || !std::isfinite(p) || p < 0 ||
        !(std::isdigit(static_cast<unsigned char>(num.front())))) {
      return InvalidArgument("--tolerance " + t.text + ": expected a percentage like 20%");
    }
    t.fraction = p / 100.0;
    return t;
  }
  auto d = ParseDuration(text);
  if (!d.ok()) {
    return InvalidArgument(
        "--tolerance " + t.text +
        ": expected a percentage (20%) or a duration (500ms): " + d.status().message());
  }
  if (d->count() < 0) return InvalidArgument("--tolerance " + t.text + ": must not be negative");
  t.seconds = std::chrono::duration<double>(*d).count();
  return t;
}

BaselineComparison CompareWithBaseline(const ReportModel& baseline,
                                       std::span<const ReportModel> runs,
                                       const Tolerance& tolerance) {
  BaselineComparison c;
  c.baseline_run_id = baseline.run_id;
  c.baseline_verdict = baseline.verdict;
  c.tolerance = tolerance.text;
  for (const auto& bo : baseline.objectives) {
    // A baseline gates recovery; the other kinds of objective have their own limits.
    if (bo.kind != "recover_within") continue;
    ObjectiveComparison oc;
    oc.name = bo.name;
    oc.baseline = RecoveryBracket(bo);
    std::vector<double> lows;
    for (const auto& run : runs) {
      const ObjectiveRow* o = FindObjective(run, bo.name);
      if (o == nullptr || o->samples == 0) continue;  // nothing measured in that run
      auto b = RecoveryBracket(*o);
      lows.push_back(b ? b->lo : kInf);
    }
    oc.runs_compared = static_cast<int>(lows.size());
    if (!oc.baseline) {
      oc.status = "not-compared";
      oc.note = "the baseline run did not recover on this objective";
    } else if (lows.empty()) {
      oc.status = "not-compared";
      oc.note = "no run measured this objective";
    } else {
      double allowance = tolerance.seconds + tolerance.fraction * oc.baseline->hi;
      oc.limit_s = oc.baseline->hi + allowance;
      double l = MedianOf(lows);
      oc.runs_lo_median_s = l;
      if (l > oc.limit_s) {
        oc.status = "regressed";
        oc.note = std::isfinite(l)
                      ? fmt::format("recovery lower bound {} > baseline upper bound {} + {}",
                                    Secs(l), Secs(oc.baseline->hi), Secs(allowance))
                      : "most runs did not recover; the baseline did";
        c.regressed = true;
      } else {
        oc.status = "ok";
        oc.note = fmt::format("recovery lower bound {} <= {} (baseline upper bound {} + {})",
                              Secs(l), Secs(oc.limit_s), Secs(oc.baseline->hi), Secs(allowance));
      }
    }
    c.objectives.push_back(std::move(oc));
  }
  return c;
}

int RepeatExitCode(std::span<const ReportModel> runs, bool regressed) {
  if (runs.empty()) return 3;
  int worst = 0;
  for (const auto& r : runs) worst = std::max(worst, Severity(r.verdict));
  switch (worst) {
    case 4:
      return 3;
    case 3:
      return 4;
    case 2:
      return 1;
    default:
      return regressed ? 5 : 0;
  }
}

RepeatSummary SummarizeRepeat(std::string experiment, int requested, double pause_s, bool stopped,
                              std::vector<ReportModel> runs,
                              std::optional<BaselineComparison> baseline) {
  RepeatSummary s;
  s.experiment = std::move(experiment);
  s.requested = requested;
  s.pause_s = pause_s;
  s.stopped = stopped;
  s.runs = std::move(runs);
  s.baseline = std::move(baseline);
  // Objectives in the order the first run that has them lists them.
  for (const auto& run : s.runs) {
    for (const auto& o : run.objectives) {
      auto it = std::find_if(s.objectives.begin(), s.objectives.end(),
                             [&](const ObjectiveSpread& x) { return x.name == o.name; });
      if (it == s.objectives.end()) {
        s.objectives.push_back({o.name, o.after, 0, std::nullopt, std::nullopt, {}});
      }
    }
  }
  for (auto& spread : s.objectives) {
    std::vector<double> detect, recover;
    for (const auto& run : s.runs) {
      const ObjectiveRow* o = FindObjective(run, spread.name);
      if (o == nullptr) continue;
      ++spread.runs;
      spread.verdicts.push_back(o->verdict);
      if (o->time_to_detect_s) detect.push_back(*o->time_to_detect_s);
      if (o->time_to_recover_s) recover.push_back(*o->time_to_recover_s);
    }
    spread.time_to_detect = Distribute(std::move(detect));
    spread.time_to_recover = Distribute(std::move(recover));
  }
  bool regressed = s.baseline && s.baseline->regressed;
  s.exit_code = RepeatExitCode(s.runs, regressed);
  switch (s.exit_code) {
    case 0:
      s.verdict = "PASS";
      break;
    case 1:
      s.verdict = "FAIL";
      break;
    case 3:
      s.verdict = "ABORTED";
      break;
    case 5:
      s.verdict = "REGRESSED";
      break;
    default:
      s.verdict = "ERROR";
  }
  return s;
}

std::string RenderRepeatText(const RepeatSummary& s) {
  std::string out = fmt::format("Experiment: {} — {} of {} run(s){}\n", S(s.experiment),
                                s.runs.size(), s.requested, s.stopped ? " (stopped)" : "");
  out += fmt::format("Verdict: {} (exit {})\n\nRuns:\n", s.verdict, s.exit_code);
  for (size_t i = 0; i < s.runs.size(); ++i) {
    const auto& r = s.runs[i];
    out += fmt::format("  {:>2}. {:<14} {:<8}", i + 1, S(r.run_id), S(r.verdict));
    for (const auto& o : r.objectives) {
      auto b = RecoveryBracket(o);
      out += fmt::format(
          "  {}: {}", S(o.name),
          b ? fmt::format("{} [{:.2f}, {:.2f}]", Secs(*o.time_to_recover_s), b->lo, b->hi)
            : std::string("not recovered"));
    }
    if (r.verdict != "PASS" && !r.reason.empty()) out += "  (" + S(r.reason) + ")";
    out += "\n";
  }
  out += "\nObjectives:\n";
  for (const auto& o : s.objectives) {
    std::string verdicts;
    for (const auto& v : o.verdicts) verdicts += (verdicts.empty() ? "" : " ") + S(v);
    out += fmt::format("  {} (after {}): {}\n", S(o.name), S(o.after), verdicts);
    out += "    time to detect:  " + DistText(o.time_to_detect, o.runs) + "\n";
    out += "    time to recover: " + DistText(o.time_to_recover, o.runs) + "\n";
  }
  if (s.baseline) {
    const auto& b = *s.baseline;
    out += fmt::format("\nBaseline: run {} ({}), tolerance {}: {}\n", S(b.baseline_run_id),
                       S(b.baseline_verdict), S(b.tolerance),
                       b.regressed ? "REGRESSED" : "no regression");
    for (const auto& o : b.objectives) {
      std::string base = o.baseline
                             ? fmt::format("[{:.2f}, {:.2f}]", o.baseline->lo, o.baseline->hi)
                             : std::string("—");
      out += fmt::format("  {:<10} {} baseline {}: {}\n", o.status, S(o.name), base, S(o.note));
    }
  }
  return out;
}

std::string RenderRepeatJson(const RepeatSummary& s) {
  json j;
  j["experiment"] = s.experiment;
  j["verdict"] = s.verdict;
  j["exit_code"] = s.exit_code;
  j["repeat"] = {{"requested", s.requested},
                 {"completed", s.runs.size()},
                 {"stopped", s.stopped},
                 {"pause_s", s.pause_s}};
  j["runs"] = json::array();
  for (const auto& r : s.runs) {
    json run{{"run_id", r.run_id},
             {"verdict", r.verdict},
             {"exit_code", r.exit_code},
             {"reason", r.reason},
             {"objectives", json::array()}};
    for (const auto& o : r.objectives) {
      auto b = RecoveryBracket(o);
      run["objectives"].push_back({{"name", o.name},
                                   {"verdict", o.verdict},
                                   {"time_to_detect_s", Opt(o.time_to_detect_s)},
                                   {"time_to_recover_s", Opt(o.time_to_recover_s)},
                                   {"recover_lo_s", b ? json(b->lo) : json(nullptr)},
                                   {"recover_hi_s", b ? json(b->hi) : json(nullptr)}});
    }
    j["runs"].push_back(std::move(run));
  }
  j["objectives"] = json::array();
  for (const auto& o : s.objectives) {
    j["objectives"].push_back({{"name", o.name},
                               {"after", o.after},
                               {"runs", o.runs},
                               {"verdicts", o.verdicts},
                               {"time_to_detect_s", DistJson(o.time_to_detect)},
                               {"time_to_recover_s", DistJson(o.time_to_recover)}});
  }
  if (!s.baseline) {
    j["baseline"] = nullptr;
  } else {
    const auto& b = *s.baseline;
    json objs = json::array();
    for (const auto& o : b.objectives) {
      objs.push_back({{"name", o.name},
                      {"status", o.status},
                      {"baseline_lo_s", o.baseline ? json(o.baseline->lo) : json(nullptr)},
                      {"baseline_hi_s", o.baseline ? json(o.baseline->hi) : json(nullptr)},
                      {"runs_lo_median_s", Opt(o.runs_lo_median_s)},
                      {"limit_s", o.limit_s},
                      {"runs_compared", o.runs_compared},
                      {"note", o.note}});
    }
    j["baseline"] = {{"run_id", b.baseline_run_id},
                     {"verdict", b.baseline_verdict},
                     {"tolerance", b.tolerance},
                     {"regressed", b.regressed},
                     {"objectives", std::move(objs)}};
  }
  return j.dump(2) + "\n";
}

}  // namespace faultline::report
