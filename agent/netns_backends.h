#pragma once
// How faultline-agent makes every kind's backend for a workload's network namespace
// (WorkloadRouter's factory, agent/workload_router.h) from the kind's module
// (BackendModule::MakeNetnsBackend, agent/backend_module.h), and how it follows a workload across
// restarts through discovery (agent/workloads/workload_resolver.h). No kind is named here: a new
// kind only implements MakeNetnsBackend in its own folder.

#include <chrono>
#include <memory>
#include <string>

#include "agent/backend_module.h"
#include "agent/workload_router.h"

namespace faultline::agent {

namespace workloads {
class WorkloadResolver;
}

struct NetnsBackendSettings {
  // The agent's --state-dir (given to the module as BackendEnvironment::state_dir).
  std::string state_dir;
  // The dead-man switch timeout of every namespace's fault tables (the agent's --deadman-timeout).
  std::chrono::milliseconds deadman_timeout{3000};
  // Ownership records of fault tables (the agent's <state-dir>/tables; "" = none).
  std::string table_record_dir;
};

// A factory that, on the namespace's thread, makes the namespace's own fault tables (an nftables
// context and a dead-man switch whose refresher starts there on first use), asks `module` for its
// backend there, checks the kind's capability there (FAILED_PRECONDITION "not available in this
// namespace: ...") and sweeps the namespace's faultline_* tables plus the module's own leftovers.
// `module` must outlive the factory (main keeps the modules for the agent's life).
NetnsBackendFactory ModuleInNetns(BackendModule& module, NetnsBackendSettings settings);

// The restart policy's resolver (WorkloadRouter::FollowRestarts) through discovery: a container or
// pod is re-resolved by its runtime and exact id (a container restarted by its runtime keeps its
// id and gets a new netns), a runtime-free handle by its netns path (ResolveByNetnsPath). NOT_FOUND
// when the runtime no longer lists it; the runtime's errors as they are. Thread-safe.
WorkloadResolver ResolveThroughDiscovery(
    std::shared_ptr<const workloads::WorkloadResolver> discovery);

}  // namespace faultline::agent
