#pragma once
// The HTML report (`run --report-html`, `report --format html`): one self-contained file — inline
// CSS and SVG, no script, no external resource, a Content-Security-Policy that forbids both — so
// it opens offline in any browser and can be attached to a ticket or a game-day write-up.
//
// It shows a verdict banner, the objectives (measured vs target, PASS/FAIL), and an SVG timeline
// whose x axis is seconds since the run started: per probe a latency line (with a y axis in ms)
// over a strip of success/failure marks; shaded fault windows per fault and agent (applied →
// reverted ack); vertical markers for the fault in effect (t_inject), revert, and each
// objective's detect and recover instants with their ± uncertainty band; each objective's target
// instant (t_inject or t_revert + recover_within) labelled PASS/FAIL; annotations as numbered
// flags. Below it: the evidence counters of every fault on every agent, probe latency figures,
// warnings and the annotations' text.

#include <string>

#include "controller/report/report_model.h"

namespace faultline::report {

// The HTML document. Pure and deterministic (the same model gives the same bytes); every string
// from the model is escaped (see EscapeMarkup), so names from experiment files cannot inject
// markup.
std::string RenderHtml(const ReportModel& report);

}  // namespace faultline::report
