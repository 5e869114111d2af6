#pragma once
// NftRuleset: the agent's only door to nftables kernel state, through libnftables (no `nft`
// program is spawned). Every fault owns one table named faultline_<fault-id>; reverting a fault
// deletes its table, which is atomic and never touches rules Faultline does not own.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct nft_ctx;

namespace faultline::agent::netfilter {

// Prefix of every table the agent creates; SweepTables removes tables carrying it.
inline constexpr std::string_view kTablePrefix = "faultline_";

// One nftables table as listed by the kernel.
struct NftTable {
  std::string family;  // "inet", "ip", "ip6", "arp", "bridge", "netdev"
  std::string name;
  bool operator==(const NftTable&) const = default;
};

// True for a name we are willing to splice into an nft command: [a-z][a-z0-9_]{0,63}.
bool IsValidNftIdentifier(std::string_view name);
// True for an nftables address family: ip, ip6, inet, arp, bridge, netdev.
bool IsValidNftFamily(std::string_view family);

// A libnftables context. All methods are thread-safe (serialised on one context).
class NftRuleset {
 public:
  NftRuleset();
  ~NftRuleset();
  NftRuleset(const NftRuleset&) = delete;
  NftRuleset& operator=(const NftRuleset&) = delete;

  // Runs a batch of nft commands (nft syntax, one per line or ';'-separated) as one atomic
  // transaction. Errors: INTERNAL when libnftables could not be initialised; UNAVAILABLE with
  // nft's own error text when the batch was rejected (nothing of it is applied then).
  // Callers must validate any name they interpolate (IsValidNftIdentifier).
  Status Run(const std::string& commands);

  // Like Run, returning what nft printed (e.g. for "list ..." commands).
  Result<std::string> RunWithOutput(const std::string& commands);

  // Tables whose name starts with name_prefix ("" = all), in kernel order.
  Result<std::vector<NftTable>> ListTables(std::string_view name_prefix = "");

  // Deletes table `family name` if it exists. Idempotent: a missing table is OK.
  // INVALID_ARGUMENT for a bad family or name; UNAVAILABLE with nft's error otherwise.
  Status DeleteTable(std::string_view family, std::string_view name);

  // Deletes every table (any family) whose name starts with prefix; returns the deleted names.
  // Tries every table; if any deletion failed, returns the first error instead.
  // Used at agent start to remove state left by a crashed agent. The prefix must be a valid
  // identifier prefix (non-empty, [a-z][a-z0-9_]*), so an empty prefix cannot wipe the ruleset.
  Result<std::vector<std::string>> SweepTables(std::string_view prefix = kTablePrefix);

 private:
  Result<std::string> RunLocked(const std::string& commands);

  std::mutex mu_;
  nft_ctx* ctx_ = nullptr;  // guarded by mu_; made by the first RunLocked
};

}  // namespace faultline::agent::netfilter
