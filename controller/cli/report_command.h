#pragma once
// `faultline report RUN [--format text|json]`: a stored run's report, re-rendered.

#include <CLI/CLI.hpp>

namespace faultline::cli {

// Adds the `report` verb. Exit code: 0, 2 (unknown run, bad input), 4 (history unreachable).
void AddReportCommand(CLI::App& app, int* exit_code);

}  // namespace faultline::cli
