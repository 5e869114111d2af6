#pragma once
// Reports of stored runs (`faultline report RUN`, and the HTML/JUnit renderers): the stored
// JSON report read back into an engine::RunResult, so every renderer works the same on a live
// run and on history; plus the run's annotations.

#include <string>
#include <string_view>

#include "common/status.h"
#include "controller/engine/run_engine.h"
#include "controller/store/run_store.h"

namespace faultline::report {

// Reads a JSON report written by RenderJson back into a RunResult (monotonic instants are
// rebuilt from timeline.monotonic_origin_ns + offsets). RenderText/RenderJson of the result
// reproduce the original report. INVALID_ARGUMENT, naming the field, for malformed input.
Result<engine::RunResult> ParseJsonReport(std::string_view text);

// The stored JSON report with `annotations[]` added: each {at (ISO-8601 UTC), at_unix_ms,
// t_s (seconds from the run's start, may be negative or past its end), author, text}. A run
// without a report (still running, interrupted) gives a small document with the run's fields.
Result<std::string> RenderStoredJson(const store::StoredRun& stored);

// The text report of a stored run (RenderText of ParseJsonReport) followed by its annotations.
Result<std::string> RenderStoredText(const store::StoredRun& stored);

// "2026-11-22T19:17:29.123Z" (empty for <= 0).
std::string IsoTime(int64_t unix_ms);

}  // namespace faultline::report
