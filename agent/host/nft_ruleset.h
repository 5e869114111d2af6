#pragma once
// NftRuleset: the real NftTables (nft_tables.h), the agent's only door to nftables kernel state,
// through libnftables (no `nft` program is spawned). Every fault owns one table named
// faultline_<fault-id>, created and reverted through FaultTables (fault_tables.h), which never
// deletes what the agent did not create.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/host/host_call.h"
#include "agent/host/nft_tables.h"
#include "common/status.h"

namespace faultline::agent::host {

// How long one libnftables transaction (a netlink round trip) may take before its caller gets
// DEADLINE_EXCEEDED. The kernel answers in milliseconds; a netlink socket that never answers must
// not hold a revert or a halt.
inline constexpr std::chrono::milliseconds kNftCallDeadline{5000};

struct NftRulesetOptions {
  // The longest a caller waits for one transaction (tests shorten it).
  std::chrono::milliseconds deadline = kNftCallDeadline;
  // Where transactions run; null = a pool of this ruleset's own (4 workers).
  std::shared_ptr<HostCallPool> pool;
};

// A libnftables context. All methods are thread-safe (serialised on one context). Every
// transaction runs on a HostCallPool worker and its caller waits at most options.deadline:
// DEADLINE_EXCEEDED naming the batch's first command when it did not answer in time (it may
// still take effect later: callers treat it like any failed transaction and retry or revert),
// RESOURCE_EXHAUSTED at once when every worker is still held by an earlier stuck transaction.
class NftRuleset final : public NftTables {
 public:
  explicit NftRuleset(NftRulesetOptions options = {});
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
  // The libnftables context, shared with the transactions still running on a worker.
  struct Context;
  Result<std::string> RunOnWorker(const std::string& commands, bool handles);

  std::shared_ptr<Context> context_;
  std::chrono::milliseconds deadline_;
  std::shared_ptr<HostCallPool> pool_;
};

}  // namespace faultline::agent::host
