#pragma once
// Reports of stored runs (`faultline report RUN`): the stored JSON report with the run's
// annotations added, read into the one ReportModel (report_model.h), so every renderer (text,
// JSON, HTML, JUnit) works the same on a live run, a saved file and the history.

#include <string>

#include "common/status.h"
#include "controller/report/report_model.h"
#include "controller/store/run_store.h"

namespace faultline::report {

// The stored JSON report with `annotations[]` added: each {at (ISO-8601 UTC), at_unix_ms,
// t_s (seconds from the run's start, may be negative or past its end), author, text}, plus the
// run's `state` and `source`. A run without a report (still running, interrupted) gives a small
// document with the run's fields. INVALID_ARGUMENT when the stored report is not JSON.
Result<std::string> RenderStoredJson(const store::StoredRun& stored);

// The model of a stored run's report, annotations included. FAILED_PRECONDITION when the run has
// no report (still running, or interrupted before it could report); INVALID_ARGUMENT, naming the
// field, when the stored report is malformed.
Result<ReportModel> LoadStoredReport(const store::StoredRun& stored);

// The text report of a stored run (RenderText of LoadStoredReport, annotations included), or
// what the store knows of a run without a report.
Result<std::string> RenderStoredText(const store::StoredRun& stored);

}  // namespace faultline::report
