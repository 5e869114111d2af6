#pragma once
// `faultline schedule add|list|rm|pause|resume|firings`: scheduled game days. The verbs work on
// a schedule::ScheduleService: today the store named by --store URL (the controller reads the
// same store); a controller endpoint is a second implementation of that interface.

#include <CLI/CLI.hpp>

namespace faultline::cli {

// Adds the `schedule` verb. Exit codes: 0, 2 (invalid input, unknown or duplicate schedule),
// 4 (store unreachable).
void AddScheduleCommand(CLI::App& app, int* exit_code);

}  // namespace faultline::cli
