#pragma once
// The verbs that talk to a faultline-controller: `faults`, `halt`, `resume`, and `run
// --controller ADDR` / `agents --controller ADDR` (the fleet as the controller sees it).

#include <CLI/CLI.hpp>
#include <string>

#include "controller/cli/certs_command.h"

namespace faultline::cli {

// Adds `faults`, `halt` and `resume` to `app`; each stores its exit code in *exit_code
// (0 ok, 2 usage, 4 the controller could not be reached or an agent did not confirm).
void AddControllerCommands(CLI::App& app, int* exit_code);

// `faultline run --controller ADDR FILE`: submits the experiment to the controller, prints its
// progress on stderr as it streams, then the report; returns the run's exit code (0/1/3/4, 2
// for an invalid experiment). Ctrl-C aborts the run (the controller reverts its faults).
int RunViaController(const std::string& controller, const std::string& file,
                     const std::string& lease_ttl, const std::string& output,
                     const std::string& report_json, bool quiet, const ClientTlsArgs& tls);

// `faultline agents --controller ADDR`: the agents attached to the controller.
int AgentsViaController(const std::string& controller, const std::string& output,
                        const ClientTlsArgs& tls);

}  // namespace faultline::cli
