#pragma once
// FaultManager: the agent's fault lifecycle without gRPC. Validates requests, journals a fault
// before its backend applies it, keeps one lease per fault and reverts on expiry, reverts
// idempotently, remembers recently reverted faults with their final evidence, and on start
// reverts whatever a previous (crashed) agent left in the journal.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/fault_backend.h"
#include "agent/fault_registry.h"
#include "agent/journal.h"
#include "agent/lease_keeper.h"
#include "common/clock.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

// Deletes kernel state left behind by earlier agents (nft tables named faultline_*) and returns
// the names of what it deleted. Injected so tests and hosts without nftables can do without.
using TableSweeper = std::function<Result<std::vector<std::string>>()>;

struct FaultManagerOptions {
  // Apply beyond this many active faults is RESOURCE_EXHAUSTED.
  uint32_t max_active_faults = 64;
  // The longest lease a caller may ask for; lease_ttl_ms must be in (0, max_lease_ttl].
  std::chrono::milliseconds max_lease_ttl = std::chrono::minutes(5);
  // The longest a fault may stay active, however often its lease is renewed: a lease never
  // extends past applied + max_fault_duration, and a fault still active then is reverted with
  // reason "max-duration".
  std::chrono::milliseconds max_fault_duration = std::chrono::hours(1);
  // How many reverted faults List(include_reverted=true) still reports (oldest dropped first).
  size_t max_recent_reverted = 256;
  // After a failed revert the agent tries again on its own after this long.
  std::chrono::milliseconds revert_retry = std::chrono::seconds(5);
  // Called by Recover after the journal is replayed; may be empty.
  TableSweeper sweep_tables;
  // Observers (for metrics); may be empty. Called after a fault was applied (its kind) and after
  // one was reverted, including journal recovery (its kind and revert reason). They run with the
  // manager's locks held: keep them cheap and never call back into the manager.
  std::function<void(const std::string& kind)> on_applied;
  std::function<void(const std::string& kind, const std::string& reason)> on_reverted;
};

// What Recover found and did.
struct RecoveryReport {
  std::vector<std::string> reverted;    // journaled faults reverted with their recorded spec
  std::vector<JournalProblem> failed;   // journaled faults that could not be reverted (kept)
  std::vector<JournalProblem> corrupt;  // unreadable journal files (renamed to *.corrupt)
  std::vector<std::string> swept_tables;
  Status sweep_status;  // OK when the sweep ran or there is no sweeper
};

class FaultManager {
 public:
  // `registry`, `journal` and `clock` must outlive the manager. The lease thread does not run
  // until StartLeaseThread(); without it leases expire only through CheckLeases().
  FaultManager(FaultRegistry& registry, Journal& journal, const Clock& clock,
               FaultManagerOptions options);
  // Stops the lease thread. Does NOT revert active faults: they stay journaled, exactly as after
  // a crash (call Shutdown first for a clean stop).
  ~FaultManager();
  FaultManager(const FaultManager&) = delete;
  FaultManager& operator=(const FaultManager&) = delete;

  // Starts the thread that reverts faults whose lease expires. Idempotent.
  void StartLeaseThread();

  // Applies a fault and returns its ACTIVE status.
  // Checks, in order: run id ([a-z0-9]{1,32}) and fault id ([a-z0-9_]{1,48}) INVALID_ARGUMENT;
  // lease_ttl_ms in (0, max_lease_ttl] INVALID_ARGUMENT; a spec kind is set INVALID_ARGUMENT; a
  // backend for the kind exists and its capability was detected FAILED_PRECONDITION; the
  // backend's Validate (its error). Then, atomically with respect to every other Apply/Revert:
  // the same id already active with the same run and spec → the lease is renewed and the current
  // status returned (idempotent); with a different run or spec → ALREADY_EXISTS; an id among the
  // recently reverted (options.max_recent_reverted) → FAILED_PRECONDITION, never applied again,
  // so a delayed or retried apply cannot outlive its run's revert or a halt; at the cap of
  // active faults → RESOURCE_EXHAUSTED. The request is journaled (INTERNAL on I/O error) before
  // the backend applies it; a backend error removes the journal record and is returned as is.
  // UNAVAILABLE after Shutdown. Nothing is left behind on any error.
  Result<v1::FaultStatus> Apply(const v1::ApplyFaultRequest& request);

  // Every check Apply makes on the request itself before anything reaches the journal or the
  // kernel: ids, lease ttl, kind, a backend for it, the backend's Validate (same errors, same
  // order), without the host's capability (DetectAll's result). No side effects; thread-safe.
  // The agent-request fuzz target drives it.
  Status ValidateRequest(const v1::ApplyFaultRequest& request) const;

  // Moves the lease of an active fault to now + lease_ttl_ms. INVALID_ARGUMENT for a bad id or
  // ttl; NOT_FOUND for a fault that is not active (FAILED_PRECONDITION when it was reverted
  // recently, naming the reason); FAILED_PRECONDITION when the lease has already expired or a
  // revert is in progress.
  // The new deadline never passes applied + options.max_fault_duration (the renewal still
  // succeeds; the fault is then reverted with reason "max-duration").
  Result<v1::FaultStatus> Renew(const std::string& fault_id, uint32_t lease_ttl_ms);

  // Reverts an active fault (backend handle, then the journal record) and returns its final
  // REVERTED status with evidence, reverted_at and `reason`. Idempotent: an unknown or already
  // reverted id is OK and returns the last known status if still remembered (nullopt otherwise).
  // INVALID_ARGUMENT for a malformed id. A backend error is returned; the fault then stays
  // active and the agent retries the revert on its own after options.revert_retry.
  Result<std::optional<v1::FaultStatus>> Revert(const std::string& fault_id,
                                                const std::string& reason);

  // Reverts every active fault of `run_id` (every fault when empty) and returns their final
  // statuses. INVALID_ARGUMENT for a malformed run id. Tries all of them even when some fail;
  // then returns INTERNAL naming the failures (the others are reverted regardless).
  Result<std::vector<v1::FaultStatus>> RevertAll(const std::string& run_id,
                                                 const std::string& reason);

  // Active faults with live evidence, then (if asked) recently reverted ones, newest first.
  std::vector<v1::FaultStatus> List(bool include_reverted) const;

  // Status of one fault, active or recently reverted.
  std::optional<v1::FaultStatus> Get(const std::string& fault_id) const;

  // How many faults are active now (including one whose revert is in progress).
  size_t ActiveCount() const;
  // The limits this manager enforces (reported by GetInfo).
  const FaultManagerOptions& options() const { return options_; }

  // Call once at start, before serving: reverts every journaled fault with its backend's
  // RevertOrphan and the recorded spec, removes the record (failures are logged and kept for the
  // next start), quarantines corrupt records, then runs options.sweep_tables.
  // Recovered faults are listed as REVERTED with reason "journal".
  RecoveryReport Recover();

  // Refuses further Apply calls (UNAVAILABLE), reverts every active fault with reason
  // "shutdown" and stops the lease thread. Idempotent. Returns the RevertAll error, if any.
  Status Shutdown();

  // Reverts (reason "lease-expired") every fault whose lease is past due on the clock; returns
  // their ids. The lease thread does the same on its own; tests call this after moving a
  // FakeClock.
  std::vector<std::string> CheckLeases();

 private:
  struct ActiveFault {
    v1::ApplyFaultRequest request;
    std::string kind;
    std::shared_ptr<FaultHandle> handle;
    int64_t applied_at_unix_ms = 0;
    MonoTime expires_at{};  // applied + options.max_fault_duration
    bool reverting = false;
  };

  void OnLeaseExpired(const std::string& fault_id);
  // Ids, ttl and kind of an Apply request; the backend serving the kind.
  Result<FaultBackend*> BackendFor(const v1::ApplyFaultRequest& request) const;
  // Precondition: mutation_mu_ held.
  Result<std::optional<v1::FaultStatus>> RevertLocked(const std::string& fault_id,
                                                      const std::string& reason);
  // Precondition: mu_ held.
  v1::FaultStatus ActiveStatusLocked(const ActiveFault& fault) const;
  std::optional<v1::FaultStatus> RecentLocked(const std::string& fault_id) const;
  void RememberLocked(v1::FaultStatus status);
  Status ValidateTtl(uint32_t lease_ttl_ms) const;
  // now + lease_ttl_ms, but never later than `expires_at`.
  MonoTime DeadlineFor(uint32_t lease_ttl_ms, MonoTime expires_at) const;

  FaultRegistry& registry_;
  Journal& journal_;
  const Clock& clock_;
  const FaultManagerOptions options_;

  // Serialises Apply, Revert, Recover and Shutdown end to end (including backend calls), so a
  // revert in progress never races with an apply of the same id. Taken before mu_.
  std::mutex mutation_mu_;
  // Guards the maps below; held only briefly, never across backend or journal calls except
  // GetEvidence (which backends keep cheap and thread-safe).
  mutable std::mutex mu_;
  std::map<std::string, ActiveFault> active_;  // guarded by mu_
  std::deque<v1::FaultStatus> recent_;         // guarded by mu_; newest at the front
  bool shutting_down_ = false;                 // guarded by mu_

  // Last: destroyed (and its thread joined) first, before the state its callback touches.
  LeaseKeeper lease_;
};

}  // namespace faultline::agent
