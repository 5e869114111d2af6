#pragma once
// Local run history for direct mode: `faultline history`, and what `faultline run` records.
// The store is named by --history URL, else $FAULTLINE_HISTORY, else
// sqlite:///var/lib/faultline/history.db (see store::OpenRunStore for URL forms); "none" turns
// recording off.

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/status.h"
#include "controller/engine/run_engine.h"
#include "controller/report/report_model.h"
#include "controller/store/run_store.h"

namespace faultline::cli {

// Adds `--history URL` to a verb; returns the option.
CLI::Option* AddHistoryFlag(CLI::App* verb, std::string* url);

// Opens the history named by `url` (empty: the default). Errors as store::OpenRunStore.
Result<std::unique_ptr<store::RunStore>> OpenHistory(const std::string& url);

// The exit code for a failed history operation: 2 for bad input or an unknown run, else 4.
int ExitCodeForStoreError(const Status& s);

// Records a finished direct-mode run (its spec file's text, the JSON report) in the history.
// Never fails the run: a history that cannot be written is a warning on stderr, and the run's
// verdict and exit code stay what they were. Does nothing when `url` is "none".
void RecordRunInHistory(const std::string& url, const std::string& spec_path,
                        const engine::RunResult& result);

// The report of a baseline run of `experiment` in the history named by `url`: `which` is a run
// id (or unique prefix of 4+ characters) or "last-pass" (the newest finished PASS run of
// `experiment`). Errors: NOT_FOUND (no such run, no PASS run), INVALID_ARGUMENT (ambiguous
// prefix, a run of another experiment, a malformed stored report), FAILED_PRECONDITION (the run
// has no report: running or interrupted), or the store's errors.
Result<report::ReportModel> LoadBaseline(const std::string& url, const std::string& which,
                                         const std::string& experiment);

// Adds `history [--limit N] [--output text|json] [--history URL | --controller ADDR]` and
// `history --trend EXPERIMENT [--html FILE]` (time to recover over time, report/trend_report.h;
// local history only).
void AddHistoryCommand(CLI::App& app, int* exit_code);

}  // namespace faultline::cli
