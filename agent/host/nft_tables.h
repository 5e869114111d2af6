#pragma once
// NftTables: the seam between fault backends and nftables kernel state. NftRuleset
// (nft_ruleset.h) is the real one, through libnftables; tests use a fake that records batches.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace faultline::agent::host {

// Prefix of every table the agent creates (faultline_<fault-id>).
inline constexpr std::string_view kTablePrefix = "faultline_";

// True for a name we are willing to splice into an nft command: [a-z][a-z0-9_]{0,63}.
bool IsValidNftIdentifier(std::string_view name);
// True for an nftables address family: ip, ip6, inet, arp, bridge, netdev.
bool IsValidNftFamily(std::string_view family);

// One nftables table as listed by the kernel.
struct NftTable {
  std::string family;  // "inet", "ip", "ip6", "arp", "bridge", "netdev"
  std::string name;
  bool operator==(const NftTable&) const = default;
};

// A named nft counter's values.
struct NftCounter {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};
// Named counters from `nft list counters table ...` (or `list table`) output: name -> values.
// Pure.
std::map<std::string, NftCounter> ParseNftCounters(const std::string& listing);

class NftTables {
 public:
  virtual ~NftTables() = default;

  // Runs a batch of nft commands (nft syntax, one per line) as one atomic transaction.
  // UNAVAILABLE with nft's own error text when the batch was rejected (nothing of it applied);
  // INTERNAL when nftables cannot be used at all. Callers validate interpolated names.
  virtual Status Run(const std::string& commands) = 0;

  // Like Run, returning what nft printed (for "list ..." commands). With `handles`, objects are
  // printed with their handles ("# handle N") and what an add created is echoed back.
  virtual Result<std::string> RunWithOutput(const std::string& commands, bool handles = false) = 0;

  // Tables whose name starts with name_prefix ("" = all), in kernel order.
  virtual Result<std::vector<NftTable>> ListTables(std::string_view name_prefix = "") = 0;

  // Deletes table `family name` if it exists, whoever made it (capability probes and tables the
  // caller just failed to finish). Idempotent. INVALID_ARGUMENT for a bad family or name.
  virtual Status DeleteTable(std::string_view family, std::string_view name) = 0;
};

}  // namespace faultline::agent::host
