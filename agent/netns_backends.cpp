#include "agent/netns_backends.h"

#include <utility>

#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nft_ruleset.h"
#include "agent/workloads/workload_resolver.h"

namespace faultline::agent {

NetnsBackendFactory ModuleInNetns(BackendModule& module, NetnsBackendSettings settings) {
  return [&module, settings](const workloads::Workload& w) -> Result<NetnsBackend> {
    // Made on the namespace's thread: the context's netlink socket and the refresher thread are
    // created there on first use.
    auto tables = std::make_shared<host::FaultTables>(
        std::make_shared<host::NftRuleset>(),
        std::make_shared<host::DeadmanSwitch>(settings.deadman_timeout), settings.table_record_dir);
    BackendEnvironment env;
    env.state_dir = settings.state_dir;
    env.control_port = 0;
    env.tables = tables;
    Result<NetnsBackend> made = module.MakeNetnsBackend(env, w);
    if (!made.ok()) return made.status();
    if (Status s = made->backend->DetectCapability(); !s.ok()) {
      return FailedPrecondition("not available in this namespace: " + s.message());
    }
    auto own = std::move(made->sweep);
    made->sweep = [tables, own]() -> Result<std::vector<std::string>> {
      auto swept = tables->Sweep(host::kTablePrefix);
      if (!swept.ok() || !own) return swept;
      auto more = own();
      if (!more.ok()) return more;
      swept->insert(swept->end(), more->begin(), more->end());
      return swept;
    };
    return made;
  };
}

WorkloadResolver ResolveThroughDiscovery(
    std::shared_ptr<const workloads::WorkloadResolver> discovery) {
  return [discovery](const workloads::Workload& w) -> Result<workloads::Workload> {
    if (w.runtime.empty()) return ResolveByNetnsPath(w);
    v1::WorkloadSelector selector;
    selector.set_runtime(w.runtime == "cri" ? v1::WorkloadSelector::CRI
                                            : v1::WorkloadSelector::DOCKER);
    selector.add_ids(w.id);
    auto found = discovery->Resolve(selector);
    if (!found.ok()) return found.status();
    for (workloads::Workload& now : found->workloads) {
      if (now.id == w.id) return std::move(now);
    }
    return NotFound(std::string(workloads::WorkloadKindName(w.kind)) + " " + w.name + " (" + w.id +
                    ") is no longer listed by " + w.runtime);
  };
}

}  // namespace faultline::agent
