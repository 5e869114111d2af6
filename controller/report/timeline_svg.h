#pragma once
// The run's SVG timeline: the one picture of a run, drawn from the report model. The HTML report
// (html_report.h) embeds it and the console serves it live (GET /api/runs/<id>/timeline.svg and
// the `timeline` event, docs/console-api.md), so a run looks the same while it happens and after.
//
// x axis: seconds since the run started. Per probe a latency line (y axis in ms) over a strip of
// success/failure marks; shaded fault windows per fault and agent (applied → reverted ack, open
// while not reverted); vertical markers for the fault in effect (t_inject), revert, and each
// objective's detect and recover instants with their brackets; each objective's target instant
// labelled PASS/FAIL; annotations as numbered flags. Styling is by class names and presentation
// attributes only (no inline style, no script), so it passes a strict Content-Security-Policy.

#include <string>

#include "controller/report/report_model.h"

namespace faultline::report {

// The <svg id="timeline"> element. Pure and deterministic (the same model gives the same bytes);
// every string from the model is escaped (EscapeMarkup). Total: a partial model (a run still
// going: no verdict, open fault windows, no objectives yet) draws what it has. Thread-safe.
std::string RenderTimelineSvg(const ReportModel& report);

}  // namespace faultline::report
