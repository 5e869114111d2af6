#pragma once
// Process-wide logging setup (spdlog). Logs go to stderr; stdout is kept for command output.

#include <string>
#include <string_view>

namespace faultline {

// level: trace|debug|info|warn|error. Unknown levels fall back to info. Idempotent.
void SetupLogging(const std::string& level, const std::string& name);

// For a log field whose value came from the network or a file (a peer's certificate name, an
// error message echoing a request): backslash, double quote and every byte outside printable
// ASCII become \xNN, so the value can neither end its quoted field nor forge a log line; longer
// than `max_bytes` it is cut and ends in "...". Pure; total.
std::string LogSafe(std::string_view text, size_t max_bytes = 256);

// `id` when `valid` accepts it, else "<invalid>": for identifiers (run ids, fault ids) that a log
// line shows only once they are known to be well formed. Pure.
std::string LogId(std::string_view id, bool (*valid)(std::string_view));

}  // namespace faultline
