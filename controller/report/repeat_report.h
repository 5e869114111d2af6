#pragma once
// Repeat and compare (`faultline run --repeat N --baseline RUN|last-pass`): one measurement
// turned into a distribution, and a regression gate against a stored run. Pure functions over
// ReportModels (fresh runs via FromRun, stored ones via ParseReportJson), so the same rules apply
// whether a run came from this process or from the history. No clock, no I/O, thread-compatible.
//
// Definitions (docs/repeat-and-compare.md says the same for users):
//  - distribution of n values (n >= 1), sorted ascending v[1..n]:
//      min = v[1], max = v[n];
//      median = v[(n+1)/2] for odd n, the mean of v[n/2] and v[n/2+1] for even n;
//      p95 = nearest rank: v[ceil(0.95 * n)] (with 3 runs that is the max).
//    Runs in which an objective was not detected / not recovered do not enter that figure's
//    distribution; `count` says how many did.
//  - recovery bracket of an objective in one run: RecoveryBracket() — an interval [lo, hi] of
//    seconds that contains the true recovery instant (relative to t_inject or t_revert).
//  - regression rule, per objective present in the baseline with a recovery bracket [b_lo, b_hi]:
//      L = median over this invocation's runs of each run's recovery lower bound (a run that did
//          not recover counts as +infinity; a run without the objective or without samples for
//          it does not count);
//      allowance = tolerance seconds, or tolerance percent × b_hi;
//      REGRESSED  iff  L > b_hi + allowance.
//    Because every lo_i <= truth_i, L is at most the median true recovery: a regression reported
//    by this rule means the median true recovery is slower than the baseline's true recovery by
//    more than the allowance — never an artefact of sampling. Overlapping brackets never regress.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "controller/report/report_model.h"

namespace faultline::report {

// Seconds [lo, hi], lo <= hi, containing the true instant.
struct Bracket {
  double lo = 0;
  double hi = 0;
};

// The recovery bracket of one objective in one run; unset when it did not recover. The report's
// own bracket (ObjectiveRow::recover_bracket: [last failing sample's send, first good sample's
// answer], docs/measurement.md) when it has one; for reports stored before brackets existed,
// [time_to_recover - uncertainty, time_to_recover + uncertainty] with lo clipped at 0. Pure; total.
std::optional<Bracket> RecoveryBracket(const ObjectiveRow& objective);

// min / median / p95 / max of a set of values (definitions above).
struct Distribution {
  int count = 0;
  double min = 0, median = 0, p95 = 0, max = 0;
};
// Unset for an empty set. Pure; total.
std::optional<Distribution> Distribute(std::vector<double> values);

// --tolerance: "20%" (of the baseline's upper bound) or a duration ("500ms", "2s"); "0" or "0s"
// means the brackets alone decide.
struct Tolerance {
  double seconds = 0;
  double fraction = 0;  // 0.2 for "20%"
  std::string text = "0s";
};
// INVALID_ARGUMENT for anything else (negative, empty, "abc", "20 %").
Result<Tolerance> ParseTolerance(std::string_view text);

struct ObjectiveComparison {
  std::string name;
  // "ok", "regressed", or "not-compared" (the baseline or every run lacks a figure; `note` says
  // why). Only "regressed" fails the gate.
  std::string status;
  std::optional<Bracket> baseline;
  std::optional<double> runs_lo_median_s;  // L; +infinity when most runs did not recover
  double limit_s = 0;                      // b_hi + allowance
  int runs_compared = 0;
  std::string note;
};

struct BaselineComparison {
  std::string baseline_run_id;
  std::string baseline_verdict;
  std::string tolerance;  // as given
  std::vector<ObjectiveComparison> objectives;
  bool regressed = false;  // any objective "regressed"
};

// Compares `runs` (one or more runs of the same experiment) with `baseline` by the rule above.
// Objectives are matched by name. Precondition: runs is not empty. Pure; total.
BaselineComparison CompareWithBaseline(const ReportModel& baseline,
                                       std::span<const ReportModel> runs,
                                       const Tolerance& tolerance);

// Per objective, across the runs of one invocation.
struct ObjectiveSpread {
  std::string name;
  std::string after;  // "inject" | "revert"
  int runs = 0;       // runs that had this objective
  std::optional<Distribution> time_to_detect;
  std::optional<Distribution> time_to_recover;
  std::vector<std::string> verdicts;  // per run, in run order
};

struct RepeatSummary {
  std::string experiment;
  int requested = 0;
  bool stopped = false;  // interrupted: fewer runs than requested were started
  double pause_s = 0;
  std::vector<ReportModel> runs;  // in run order
  std::vector<ObjectiveSpread> objectives;
  std::optional<BaselineComparison> baseline;
  // "PASS", "FAIL", "ABORTED", "ERROR" (worst run verdict, see RepeatExitCode) or "REGRESSED".
  std::string verdict;
  int exit_code = 0;
};

// Exit code of `run --repeat/--baseline` (README "Exit codes"): 3 when any run was ABORTED (abort
// condition, halt, Ctrl-C), else 4 when any run was ERROR, else 1 when any run FAILed, else 5 when
// the baseline comparison regressed, else 0. No runs at all (stopped before the first): 3.
int RepeatExitCode(std::span<const ReportModel> runs, bool regressed);

// Builds the summary (distributions, verdict, exit code) of finished runs. Pure; total.
RepeatSummary SummarizeRepeat(std::string experiment, int requested, double pause_s, bool stopped,
                              std::vector<ReportModel> runs,
                              std::optional<BaselineComparison> baseline);

// Text for a terminal (names pass through StripTerminalControls) and the JSON document
// (`--output json` / `--report-json` in repeat mode): `experiment`, `verdict`, `exit_code`,
// `repeat` {requested, completed, stopped, pause_s}, `runs[]` {run_id, verdict, exit_code,
// reason, objectives[] {name, verdict, time_to_detect_s, time_to_recover_s, recover_lo_s,
// recover_hi_s}}, `objectives[]` {name, after, runs, verdicts[], time_to_detect_s,
// time_to_recover_s: {count, min, median, p95, max} or null}, `baseline` (null or {run_id,
// verdict, tolerance, regressed, objectives[] {name, status, baseline_lo_s, baseline_hi_s,
// runs_lo_median_s (null when +infinity or absent), limit_s, runs_compared, note}}).
std::string RenderRepeatText(const RepeatSummary& summary);
std::string RenderRepeatJson(const RepeatSummary& summary);

}  // namespace faultline::report
