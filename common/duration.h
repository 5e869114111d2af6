#pragma once
// Human durations as written in experiment files and flags: "250ms", "5s", "15m", "1h30m", "2h".

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace faultline {

using Duration = std::chrono::nanoseconds;

// Parses a sequence of <integer><unit> terms, unit one of ns, us, ms, s, m, h (e.g. "1m30s").
// Fractions, signs, spaces and an empty string are INVALID_ARGUMENT; so is a total above 7 days
// (no fault or experiment should run longer; this also keeps arithmetic far from overflow).
Result<Duration> ParseDuration(std::string_view text);

// Shortest exact rendering: "250ms", "15m", "1m30s", "0s".
std::string FormatDuration(Duration d);

// Seconds as a double, for reports.
inline double ToSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace faultline
