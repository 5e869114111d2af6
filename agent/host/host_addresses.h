#pragma once
// Host names to addresses for faults that follow a dependency's DNS (network and dependency
// faults re-resolve their `hosts` while active).

#include <chrono>
#include <string>
#include <vector>

#include "common/faultspec/peer_rules.h"
#include "common/status.h"

namespace faultline::agent::host {

// How long one resolution of a fault's hosts may take (all hosts are looked up in parallel).
inline constexpr std::chrono::milliseconds kResolveTimeout{5000};

// The numeric addresses (IPv4 and IPv6, sorted, unique) of `hosts` through the host's resolver
// (getaddrinfo), each looked up on a worker of a bounded HostCallPool ("name lookup", 64
// workers, stuck lookups included) so the caller waits at most `timeout` whatever the resolver
// does (a resolver that never answers, e.g. during a DNS drop fault on the same names). A host
// that does not exist contributes nothing. DEADLINE_EXCEEDED naming the hosts that had not
// answered by the deadline (their lookups finish in the background and are discarded), including
// hosts that found no free worker by then because earlier lookups are still stuck. Thread-safe.
Result<std::vector<std::string>> ResolveHostAddressesWithin(const std::vector<std::string>& hosts,
                                                            std::chrono::milliseconds timeout);

// ResolveHostAddressesWithin(hosts, kResolveTimeout), for the periodic re-resolution: on an
// error it logs and returns what did resolve (the caller keeps its previous answer when nothing
// at all resolves). Blocks at most kResolveTimeout; thread-safe.
std::vector<std::string> ResolveHostAddresses(const std::vector<std::string>& hosts);

// CIDR parsing is one rule, shared with validation (common/faultspec/peer_rules.h).
using faultspec::Cidr;
using faultspec::ParseCidr;

}  // namespace faultline::agent::host
