#pragma once
// `faultline report SOURCE [--format text|json|html|junit] [--out FILE] [--history URL]`: a run's
// report, rendered again in any format. SOURCE is a saved JSON report file (from `run
// --report-json` or `run --output json`: works without any history) or a run id (or a unique
// prefix) in the run history, whose report then carries the run's annotations.
// Also the shared writer of `run --report-json/--report-html/--report-junit`.

#include <CLI/CLI.hpp>
#include <string>

#include "controller/report/report_model.h"

namespace faultline::cli {

// Adds the `report` verb to `app`. When it runs it stores the exit code in *exit_code: 0
// rendered; 2 the source is neither a readable report file nor a known run, or is not a valid
// report; 4 the history is unreachable or the output cannot be written.
void AddReportCommand(CLI::App& app, int* exit_code);

// The report in `format` ("text", "json", "html", "junit"). Precondition: format is one of those.
std::string RenderReport(const report::ReportModel& model, const std::string& format);

// Paths for the report files `run` writes after a run; an empty path is skipped.
struct ReportFiles {
  std::string json, html, junit;
};
// Writes each requested file (atomically). Returns false, after printing why on stderr, when one
// could not be written; the others are still written.
bool WriteReportFiles(const report::ReportModel& model, const ReportFiles& files);

// Adds --report-json, --report-html and --report-junit to a verb.
void AddReportFileFlags(CLI::App* verb, ReportFiles* files);

}  // namespace faultline::cli
