#pragma once
// `faultline annotate RUN "text" [--author NAME]`: a human event on a run, stamped now.

#include <CLI/CLI.hpp>

namespace faultline::cli {

// Adds the `annotate` verb. Exit code: 0, 2 (unknown run, empty text), 4 (history unreachable).
void AddAnnotateCommand(CLI::App& app, int* exit_code);

}  // namespace faultline::cli
