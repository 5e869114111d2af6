#pragma once
// Host names to addresses for faults that follow a dependency's DNS (network and dependency
// faults re-resolve their `hosts` while active).

#include <string>
#include <vector>

namespace faultline::agent::host {

// The numeric addresses (IPv4 and IPv6, sorted, unique) of `hosts` through the host's resolver
// (getaddrinfo). A host that does not resolve contributes nothing; the caller keeps its previous
// answer when nothing at all resolves. Blocking (one lookup per host); thread-safe.
std::vector<std::string> ResolveHostAddresses(const std::vector<std::string>& hosts);

}  // namespace faultline::agent::host
