#pragma once
// BackendModule: what one fault kind's agent folder (agent/dns, agent/netfilter, ...) gives
// faultline-agent's main: its own command-line flags, the backend made from them, and the host
// state of a crashed agent it sweeps. A folder declares its factory in its CMakeLists.txt
// (`faultline_agent_backend(LIBRARY ... FACTORY ns::MakeBackendModule)`, cmake/fault_kinds.cmake)
// and BuiltinBackendModules() is generated from those declarations, so a new kind touches no
// shared agent file. Registration stays explicit: main calls every factory and registers what
// MakeBackend returns; nothing registers itself from a static initialiser.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/fault_backend.h"
#include "common/status.h"

namespace CLI {
class App;
}

namespace faultline::agent::host {
class FaultTables;
}

namespace faultline::agent::workloads {
struct Workload;
}

namespace faultline::agent {

// One kind's backend made for one workload's network namespace, and how to sweep what a crashed
// agent left of that kind there beyond the namespace's faultline_* tables (which the agent sweeps
// itself), e.g. the delay line's iptables rules. Used by WorkloadRouter (agent/workload_router.h).
struct NetnsBackend {
  std::unique_ptr<FaultBackend> backend;
  // Names of what was swept; may be null (nothing beyond the tables).
  std::function<Result<std::vector<std::string>>()> sweep;
};

// What the agent gives every backend it makes.
struct BackendEnvironment {
  std::string state_dir;  // --state-dir; a backend keeps its records in a sub-folder of it
  // The agent's gRPC port from --listen (0 when not listening, or when the port is picked at
  // start: BackendModule::SetControlPort tells the real one).
  uint16_t control_port = 0;
  // The fault tables of every backend (one dead-man switch; agent/host/fault_tables.h).
  std::shared_ptr<host::FaultTables> tables;
};

class BackendModule {
 public:
  virtual ~BackendModule() = default;

  // Adds the kind's flags to the agent's command line. Called once, before parsing; the module
  // keeps the parsed values until MakeBackend.
  virtual void AddFlags(CLI::App& app) = 0;
  // Checks the parsed flags; INVALID_ARGUMENT naming the flag (main exits with the usage code).
  // Called once after parsing, before anything touches the host. Default: OK.
  virtual Status CheckFlags() { return Status::Ok(); }
  // Makes the kind's backend from the checked flags. Called once; errors end the agent.
  virtual Result<std::unique_ptr<FaultBackend>> MakeBackend(const BackendEnvironment& env) = 0;
  // Makes the kind's backend for a workload's network namespace (a container's, a pod's), from the
  // same parsed flags: `env.tables` are that namespace's own fault tables and `env.control_port`
  // is 0 (the agent's port is not in the workload). Called on the namespace's NetnsThread, after
  // MakeBackend, possibly from several such threads at once (must only read the module's state):
  // whatever it opens (sockets, threads, processes) must be opened on the calling thread so it
  // belongs to the namespace. Default: FAILED_PRECONDITION (the kind cannot target a workload).
  virtual Result<NetnsBackend> MakeNetnsBackend(const BackendEnvironment& env,
                                                const workloads::Workload& workload) {
    return FailedPrecondition("this fault kind cannot act inside a workload");
  }
  // Removes host state a crashed agent left that no journal record and no fault table covers
  // (e.g. NFQUEUE rules), returning what it removed. Called at start (not in a dry run), after
  // MakeBackend. Default: nothing.
  virtual Result<std::vector<std::string>> SweepLeftovers() { return std::vector<std::string>{}; }
  // The agent's gRPC port once its server listens. Called at most once, after MakeBackend.
  // Default: ignored.
  virtual void SetControlPort(uint16_t port) {}
};

// One module per built-in kind, in agent folder-name order. Generated (cmake/fault_kinds.cmake);
// each call makes new modules.
std::vector<std::unique_ptr<BackendModule>> BuiltinBackendModules();

}  // namespace faultline::agent
