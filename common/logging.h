#pragma once
// Process-wide logging setup (spdlog). Logs go to stderr; stdout is kept for command output.

#include <string>

namespace faultline {

// level: trace|debug|info|warn|error. Unknown levels fall back to info. Idempotent.
void SetupLogging(const std::string& level, const std::string& name);

}  // namespace faultline
