#include "agent/netns_backends.h"

#include <unistd.h>

#include <filesystem>

#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nft_ruleset.h"
#include "agent/netfilter/netem_qdisc.h"

namespace faultline::agent {
namespace {

// Made on the namespace's thread: the context's netlink socket and the refresher thread are
// created there on first use.
std::shared_ptr<host::FaultTables> TablesHere(const NetnsBackendSettings& settings) {
  return std::make_shared<host::FaultTables>(
      std::make_shared<host::NftRuleset>(),
      std::make_shared<host::DeadmanSwitch>(settings.deadman_timeout), settings.table_record_dir);
}

Result<NetnsBackend> Detected(NetnsBackend made) {
  if (Status s = made.backend->DetectCapability(); !s.ok()) {
    return FailedPrecondition("not available in this namespace: " + s.message());
  }
  return made;
}

std::string IdentityDir(const workloads::Workload& w) {
  return "netns-" + std::to_string(w.netns.dev) + "-" + std::to_string(w.netns.ino);
}

}  // namespace

std::string WorkloadResolvConf(const workloads::Workload& w, const std::string& fallback) {
  std::error_code ec;
  if (!w.pids.empty()) {
    std::string p = "/proc/" + std::to_string(w.pids.front()) + "/root/etc/resolv.conf";
    if (std::filesystem::exists(p, ec)) return p;
  }
  const std::string run_netns = "/run/netns/";
  if (w.netns_path.rfind(run_netns, 0) == 0) {
    std::string p = "/etc/netns/" + w.netns_path.substr(run_netns.size()) + "/resolv.conf";
    if (std::filesystem::exists(p, ec)) return p;
  }
  return fallback;
}

NetnsBackendFactory DnsInNetns(dns::DnsBackendOptions o, NetnsBackendSettings settings) {
  return [o, settings](const workloads::Workload& w) -> Result<NetnsBackend> {
    dns::DnsBackendOptions here = o;
    here.tables = TablesHere(settings);
    here.intercept_port = 0;  // the host's port may be a service's port in the workload
    here.resolv_conf_path = WorkloadResolvConf(w, o.resolv_conf_path);
    auto tables = here.tables;
    return Detected({std::make_unique<dns::DnsBackend>(here),
                     [tables] { return tables->Sweep(host::kTablePrefix); }});
  };
}

NetnsBackendFactory NetworkInNetns(netfilter::NetworkBackendOptions o,
                                   NetnsBackendSettings settings) {
  return [o, settings](const workloads::Workload& w) -> Result<NetnsBackend> {
    netfilter::NetworkBackendOptions here = o;
    here.tables = TablesHere(settings);
    here.control_port = 0;  // the agent's control port is not in the workload's namespace
    if (!o.netem_record_dir.empty())
      here.netem_record_dir = o.netem_record_dir + "/" + IdentityDir(w);
    auto tables = here.tables;
    return Detected({std::make_unique<netfilter::NetworkBackend>(here),
                     [tables, here]() -> Result<std::vector<std::string>> {
                       auto swept = tables->Sweep(host::kTablePrefix);
                       auto rules = netfilter::SweepQueueRules(here);
                       if (!swept.ok()) return swept;
                       if (!rules.ok()) return rules;
                       swept->insert(swept->end(), rules->begin(), rules->end());
                       return swept;
                     }});
  };
}

NetnsBackendFactory ProxyInNetns(proxy::ProxyBackendOptions o, NetnsBackendSettings settings) {
  return [o, settings](const workloads::Workload&) -> Result<NetnsBackend> {
    proxy::ProxyBackendOptions here = o;
    here.tables = TablesHere(settings);
    auto tables = here.tables;
    return Detected({std::make_unique<proxy::ProxyBackend>(here),
                     [tables] { return tables->Sweep(host::kTablePrefix); }});
  };
}

NetnsBackendFactory ProcessInNetns(process::ProcessBackendOptions o) {
  return [o](const workloads::Workload& w) -> Result<NetnsBackend> {
    process::ProcessBackendOptions here = o;
    process::SelectionScope scope;
    scope.self_pid = static_cast<int>(::getpid());
    scope.net_namespace = process::NamespaceId{w.netns.dev, w.netns.ino};
    here.scope = scope;  // the backend adds o.protected_names to the defaults
    return Detected({std::make_unique<process::ProcessBackend>(here), nullptr});
  };
}

}  // namespace faultline::agent
