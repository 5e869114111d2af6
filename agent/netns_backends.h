#pragma once
// The built-in fault kinds made for a workload's network namespace (WorkloadRouter's factories,
// agent/workload_router.h). Each factory runs on the namespace's NetnsThread and builds the
// kind's backend from the host backend's options with what must be the namespace's own: an
// nftables context and a dead-man switch (its refresher thread starts there on first use), a DNS
// interceptor port picked there, the workload's resolv.conf as the pass-through default, netem
// records per namespace, and a process scope of exactly the namespace's processes. Each checks
// the kind's capability inside the namespace first (FAILED_PRECONDITION with the reason).

#include <chrono>
#include <string>

#include "agent/dns/dns_backend.h"
#include "agent/netfilter/network_backend.h"
#include "agent/process/process_backend.h"
#include "agent/proxy/proxy_backend.h"
#include "agent/workload_router.h"

namespace faultline::agent {

struct NetnsBackendSettings {
  // The dead-man switch timeout of every namespace's fault tables (the agent's --deadman-timeout).
  std::chrono::milliseconds deadman_timeout{3000};
  // Ownership records of fault tables (the agent's <state-dir>/tables; "" = none).
  std::string table_record_dir;
};

NetnsBackendFactory DnsInNetns(dns::DnsBackendOptions host_options, NetnsBackendSettings settings);
NetnsBackendFactory NetworkInNetns(netfilter::NetworkBackendOptions host_options,
                                   NetnsBackendSettings settings);
NetnsBackendFactory ProxyInNetns(proxy::ProxyBackendOptions host_options,
                                 NetnsBackendSettings settings);
// Only processes in the workload's network namespace are eligible (never the host's or a
// sibling's), with the host backend's protected names.
NetnsBackendFactory ProcessInNetns(process::ProcessBackendOptions host_options);

// The resolv.conf a workload's programs read: /proc/<first pid>/root/etc/resolv.conf, else
// /etc/netns/<name>/resolv.conf for a /run/netns/<name> handle, else `fallback`.
std::string WorkloadResolvConf(const workloads::Workload& workload, const std::string& fallback);

}  // namespace faultline::agent
