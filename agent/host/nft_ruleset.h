#pragma once
// NftRuleset: the real NftTables (nft_tables.h), the agent's only door to nftables kernel state,
// through libnftables (no `nft` program is spawned). Every fault owns one table named
// faultline_<fault-id>, created and reverted through FaultTables (fault_tables.h), which never
// deletes what the agent did not create.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/host/nft_tables.h"
#include "common/status.h"

struct nft_ctx;

namespace faultline::agent::host {

// A libnftables context. All methods are thread-safe (serialised on one context).
class NftRuleset final : public NftTables {
 public:
  NftRuleset();
  ~NftRuleset();
  NftRuleset(const NftRuleset&) = delete;
  NftRuleset& operator=(const NftRuleset&) = delete;

  // Runs a batch of nft commands (nft syntax, one per line or ';'-separated) as one atomic
  // transaction. Errors: INTERNAL when libnftables could not be initialised; UNAVAILABLE with
  // nft's own error text when the batch was rejected (nothing of it is applied then).
  // Callers must validate any name they interpolate (IsValidNftIdentifier).
  Status Run(const std::string& commands) override;

  // Like Run, returning what nft printed (e.g. for "list ..." commands); `handles` as in
  // NftTables.
  Result<std::string> RunWithOutput(const std::string& commands, bool handles = false) override;

  // Tables whose name starts with name_prefix ("" = all), in kernel order.
  Result<std::vector<NftTable>> ListTables(std::string_view name_prefix = "") override;

  // Deletes table `family name` if it exists. Idempotent: a missing table is OK.
  // INVALID_ARGUMENT for a bad family or name; UNAVAILABLE with nft's error otherwise.
  Status DeleteTable(std::string_view family, std::string_view name) override;

 private:
  Result<std::string> RunLocked(const std::string& commands, bool handles);

  std::mutex mu_;
  nft_ctx* ctx_ = nullptr;  // guarded by mu_; made by the first RunLocked
};

}  // namespace faultline::agent::host
