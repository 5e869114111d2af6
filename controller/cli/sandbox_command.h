#pragma once
// `faultline sandbox up|down|status`: the local test hosts.

#include <CLI/CLI.hpp>

namespace faultline::cli {

// Adds the `sandbox` verb and its subcommands to `app`. When one of them runs, it stores the
// process exit code (0 ok, 2 usage, 4 infrastructure error) in *exit_code.
void AddSandboxCommand(CLI::App& app, int* exit_code);

}  // namespace faultline::cli
