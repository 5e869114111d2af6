#pragma once
// Run reports. Text for terminals; JSON for machines (--report-json, --output json). The JSON
// field names listed in DESIGN.md are a contract: add fields, never rename them.

#include <string>

#include "common/status.h"
#include "controller/engine/run_engine.h"

namespace faultline::report {

// Human-readable report: verdict, objectives with measured times, faults with evidence, probes.
std::string RenderText(const engine::RunResult& run);

// The JSON report as a string (pretty-printed).
std::string RenderJson(const engine::RunResult& run);

// Writes RenderJson to `path` (temp file + rename, so readers never see half a report).
Status WriteJsonReport(const engine::RunResult& run, const std::string& path);

}  // namespace faultline::report
