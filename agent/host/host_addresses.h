#pragma once
// Host names to addresses for faults that follow a dependency's DNS (network and dependency
// faults re-resolve their `hosts` while active).

#include <string>
#include <vector>

#include "common/status.h"

namespace faultline::agent::host {

// The numeric addresses (IPv4 and IPv6, sorted, unique) of `hosts` through the host's resolver
// (getaddrinfo). A host that does not resolve contributes nothing; the caller keeps its previous
// answer when nothing at all resolves. Blocking (one lookup per host); thread-safe.
std::vector<std::string> ResolveHostAddresses(const std::vector<std::string>& hosts);

// "10.1.2.3" or "10.0.0.0/8" or "fd00::/64" in canonical form (host bits cleared), with the
// family; INVALID_ARGUMENT for anything else. Pure.
struct Cidr {
  bool v6 = false;
  std::string text;
};
Result<Cidr> ParseCidr(const std::string& text);

}  // namespace faultline::agent::host
