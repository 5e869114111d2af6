#pragma once
// The verbs that talk to a faultline-controller: `faults`, `halt`, `resume`, and `run
// --controller ADDR` / `agents --controller ADDR` (the fleet as the controller sees it).

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "controller/cli/certs_command.h"
#include "controller/store/run_store.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::cli {

// Adds `faults`, `halt`, `resume` and `token create|list|revoke` to `app`; each stores its exit
// code in *exit_code (0 ok, 2 usage, 4 the controller could not be reached or an agent did not
// confirm).
void AddControllerCommands(CLI::App& app, int* exit_code);

// `faultline run --controller ADDR FILE`: submits the experiment to the controller, prints its
// progress on stderr as it streams, then the report; returns the run's exit code (0/1/3/4, 2
// for an invalid experiment). Ctrl-C aborts the run (the controller reverts its faults).
int RunViaController(const std::string& controller, const std::string& file,
                     const std::string& lease_ttl, const std::string& output,
                     const std::string& report_json, bool quiet, const ClientTlsArgs& tls);

// A stub for the controller at `address` with the credentials `tls` resolves to.
// INVALID_ARGUMENT for unusable TLS flags (as ResolveClientCredentials).
Result<std::shared_ptr<v1::Controller::Stub>> DialController(const std::string& address,
                                                             const ClientTlsArgs& tls);

// The shared history through a controller (`history|report|annotate --controller ADDR`), with
// the same errors as the store's methods (NOT_FOUND, INVALID_ARGUMENT for an ambiguous prefix;
// UNAVAILABLE when the controller cannot be reached), so ExitCodeForStoreError applies.
Result<std::vector<store::RunRecord>> ListRunsViaController(const std::string& address,
                                                            const ClientTlsArgs& tls, int limit,
                                                            const std::string& experiment);
Result<store::StoredRun> GetRunViaController(const std::string& address, const ClientTlsArgs& tls,
                                             const std::string& run_id);
Result<store::Annotation> AnnotateViaController(const std::string& address,
                                                const ClientTlsArgs& tls,
                                                const store::Annotation& note);

// Adds `--controller ADDR` and the client TLS flags to a verb that otherwise reads a store; the
// two exclude each other (`store_flag` is the verb's --history/--store option).
void AddControllerSourceFlags(CLI::App* verb, CLI::Option* store_flag, std::string* address,
                              ClientTlsArgs* tls);

// `faultline agents --controller ADDR`: the agents attached to the controller.
int AgentsViaController(const std::string& controller, const std::string& output,
                        const ClientTlsArgs& tls);

}  // namespace faultline::cli
