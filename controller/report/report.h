#pragma once
// Run reports. Text for terminals; JSON for machines (--report-json, --output json); HTML with an
// SVG timeline for people (html_report.h); JUnit XML for CI (junit_report.h). Every renderer is a
// pure function of the ReportModel (report_model.h). The JSON field names listed in DESIGN.md are
// a contract: add fields, never rename them.

#include <string>

#include "common/status.h"
#include "controller/engine/run_engine.h"
#include "controller/report/report_model.h"

namespace faultline::report {

// Human-readable report: verdict, objectives with measured times, faults with evidence, probes,
// warnings and annotations.
std::string RenderText(const ReportModel& report);
std::string RenderText(const engine::RunResult& run);

// The JSON report as a string (pretty-printed). ParseReportJson reads it back to the same model.
std::string RenderJson(const ReportModel& report);
std::string RenderJson(const engine::RunResult& run);

// One line for `run --quiet` and CI logs: "FAIL dynamodb-dns-failover (run ID): reason".
std::string RenderVerdictLine(const ReportModel& report);

// Writes `content` to `path` with WriteFileAtomically (mode 0644): readers never see half a report.
// Errors: INTERNAL naming the path when it cannot be written or moved into place.
Status WriteReportFile(const std::string& path, const std::string& content);

// Writes RenderJson to `path` (see WriteReportFile).
Status WriteJsonReport(const engine::RunResult& run, const std::string& path);

}  // namespace faultline::report
