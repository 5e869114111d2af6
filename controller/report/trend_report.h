#pragma once
// `faultline history --trend EXPERIMENT`: time to recover over time, per objective, with each
// run's recovery bracket (repeat_report.h RecoveryBracket), as text, JSON and a self-contained
// HTML page with one SVG chart per objective (inline CSS from the HTML report, no script, no
// external resource). Pure renderers; thread-compatible.

#include <optional>
#include <string>
#include <vector>

#include "controller/report/repeat_report.h"
#include "controller/report/report_model.h"

namespace faultline::report {

struct TrendPoint {
  std::string run_id;
  std::string started_at;  // ISO-8601 UTC
  std::string run_verdict;
  std::string verdict;                      // the objective's
  std::optional<double> time_to_recover_s;  // unset: not recovered
  std::optional<Bracket> recover;
};

struct TrendSeries {
  std::string objective;
  std::string after;  // "inject" | "revert"
  double target_s = 0;
  std::vector<TrendPoint> points;  // oldest first
};

struct Trend {
  std::string experiment;
  std::vector<TrendSeries> series;  // objectives in the order the newest run lists them
};

// `runs` oldest first (reports of one experiment). Objectives are matched by name; a run without
// an objective has no point for it. Pure; total.
Trend BuildTrend(const std::string& experiment, const std::vector<ReportModel>& runs);

// A table per objective: run, start, verdict, time to recover [lo, hi].
std::string RenderTrendText(const Trend& trend);
// {experiment, objectives: [{name, after, target_s, points: [{run_id, started_at, run_verdict,
// verdict, time_to_recover_s, recover_lo_s, recover_hi_s}]}]}
std::string RenderTrendJson(const Trend& trend);
// The HTML page. Deterministic; every string escaped (EscapeMarkup). Per objective an SVG chart:
// x = runs in order (labelled by start time), y = seconds; a vertical bar for each bracket, a dot
// at the measured value coloured by the objective's verdict, a cross for "not recovered", and
// the objective's target as a dashed line.
std::string RenderTrendHtml(const Trend& trend);
// One series' chart, the <svg class="trend"> element RenderTrendHtml embeds (the console serves
// it as GET /api/trend.svg). Deterministic; every string escaped; no inline style or script.
std::string RenderTrendSvg(const TrendSeries& series);

}  // namespace faultline::report
