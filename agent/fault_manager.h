#pragma once
// FaultManager: the agent's fault lifecycle without gRPC. Validates requests, journals a fault
// before its backend applies it, keeps one lease per fault and reverts on expiry, reverts
// idempotently, remembers recently reverted faults with their final evidence, and on start
// reverts whatever a previous (crashed) agent left in the journal.

#include <chrono>
#include <condition_variable>
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
#include "agent/host/host_call.h"
#include "agent/journal.h"
#include "agent/lease_keeper.h"
#include "common/clock.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

// Deletes kernel state left behind by earlier agents (nft tables named faultline_*) and returns
// the names of what it deleted. Injected so tests and hosts without nftables can do without.
using TableSweeper = std::function<Result<std::vector<std::string>>()>;

// How long RevertAll (a halt, a shutdown) and a single Revert wait for the reverts they started.
// Every host call of a revert has its own deadline (nftables, the journal, /proc: 5 s each;
// iptables 10 s), so a revert that is still running after this is stuck in a backend.
inline constexpr std::chrono::milliseconds kRevertAllDeadline{15'000};
// Reverts RevertAll runs at once.
inline constexpr size_t kRevertParallelism = 16;

struct FaultManagerOptions {
  // Apply beyond this many faults (active, being applied or being reverted) is
  // RESOURCE_EXHAUSTED.
  uint32_t max_active_faults = 64;
  // The longest lease a caller may ask for; lease_ttl_ms must be in (0, max_lease_ttl].
  std::chrono::milliseconds max_lease_ttl = std::chrono::minutes(5);
  // The longest a fault may stay active, however often its lease is renewed: a lease never
  // extends past applied + max_fault_duration, and a fault still active then is reverted with
  // reason "max-duration".
  std::chrono::milliseconds max_fault_duration = std::chrono::hours(1);
  // How many reverted faults List(include_reverted=true) still reports (oldest dropped first).
  // Display only: the "apply once" guard below does not depend on it.
  size_t max_recent_reverted = 256;
  // How long a reverted (or cancelled) fault id stays refused by Apply. 0 means
  // max(max_lease_ttl, max_fault_duration): a stale apply (a retry delayed in the network, one
  // overtaken by a halt) is refused for at least as long as any lease could have kept it alive.
  std::chrono::milliseconds apply_once_window{0};
  // The most ids the "apply once" guard remembers at a time. 0 means
  // max(4096, 256 * max_active_faults): at the default 64 faults that is 16384 ids (about 2 MB),
  // i.e. a full agent's worth of faults reverted every 14 s for the whole hour-long window, far
  // beyond any game day. When it is full an Apply is RESOURCE_EXHAUSTED until old ids expire:
  // the guard is never weakened to make room.
  size_t max_apply_once_ids = 0;
  // RevertAll reverts up to this many faults at once, each on a worker thread of its own (more
  // wait for a free worker). At least 1.
  size_t revert_parallelism = kRevertParallelism;
  // RevertAll and Revert return at most this long after they start (tests shorten it).
  std::chrono::milliseconds revert_deadline = kRevertAllDeadline;
  // After a failed revert the agent tries again on its own after this long.
  std::chrono::milliseconds revert_retry = std::chrono::seconds(5);
  // Called by Recover after the journal is replayed; may be empty.
  TableSweeper sweep_tables;
  // Observers (for metrics); may be empty. Called after a fault was applied (its kind) and after
  // one was reverted, including journal recovery (its kind and revert reason); an apply that a
  // stop cancelled calls neither. They run with the manager's lock held: keep them cheap and
  // never call back into the manager.
  std::function<void(const std::string& kind)> on_applied;
  std::function<void(const std::string& kind, const std::string& reason)> on_reverted;
};

// Called at most once, by the thread of a stop (Revert, RevertAll, lease expiry, Shutdown) that
// cancels an apply still in progress, with the error that Apply will return (ABORTED naming the
// stop's reason). Lets a caller answer its client at once instead of when the backend returns.
// Runs without the manager's lock; must be cheap and must not call back into the manager.
using ApplyCancelledFn = std::function<void(const Status& aborted)>;

// What Recover found and did.
struct RecoveryReport {
  std::vector<std::string> reverted;    // journaled faults reverted with their recorded spec
  std::vector<JournalProblem> failed;   // journaled faults that could not be reverted (kept)
  std::vector<JournalProblem> corrupt;  // unreadable journal files (renamed to *.corrupt)
  std::vector<std::string> gone_with_workload;  // journaled faults whose workload's netns is gone
  std::vector<std::string> swept_tables;
  Status sweep_status;  // OK when the sweep ran or there is no sweeper
};

// Threading: every method is thread-safe. One short lock guards the manager's maps; it is never
// held across journal I/O, a backend's Apply or Revert, or name resolution, so a stop (Revert,
// RevertAll, lease expiry, Shutdown) never waits behind an apply: it cancels the apply instead.
class FaultManager {
 public:
  // `registry`, `journal` and `clock` must outlive the manager. The lease thread does not run
  // until StartLeaseThread(); without it leases expire only through CheckLeases().
  FaultManager(FaultRegistry& registry, Journal& journal, const Clock& clock,
               FaultManagerOptions options);
  // Stops the lease thread. Does NOT revert active faults: they stay journaled, exactly as after
  // a crash (call Shutdown first for a clean stop). Precondition: no Apply is still running and
  // no revert that RevertAll gave up on (WaitRevertsIdle) is either: either keeps using the
  // manager (agent/main.cpp exits without destroying it in that case).
  ~FaultManager();
  FaultManager(const FaultManager&) = delete;
  FaultManager& operator=(const FaultManager&) = delete;

  // Starts the thread that reverts faults whose lease expires. Idempotent.
  void StartLeaseThread();

  // Applies a fault and returns its ACTIVE status. Blocks the calling thread while the backend
  // applies (callers serving RPCs run it on a worker, never on a gRPC callback thread).
  // Checks, in order: run id ([a-z0-9]{1,32}) and fault id ([a-z0-9_]{1,48}) INVALID_ARGUMENT;
  // lease_ttl_ms in (0, max_lease_ttl] INVALID_ARGUMENT; a spec kind is set INVALID_ARGUMENT; a
  // backend for the kind exists and its capability was detected FAILED_PRECONDITION; the
  // backend's Validate (its error). Then, under the manager's lock: UNAVAILABLE after Shutdown;
  // the same id already active with the same run and spec → the lease is renewed and the current
  // status returned (idempotent); still being applied by another call → UNAVAILABLE (retry);
  // with a different run or spec → ALREADY_EXISTS; an id reverted or cancelled within the
  // "apply once" window (options.apply_once_window) → FAILED_PRECONDITION naming the reason, never
  // applied again, so a delayed or retried apply cannot outlive its run's revert or a halt; at the
  // cap of faults (pending ones count) or with the guard full → RESOURCE_EXHAUSTED. The id is then
  // reserved as pending and the lock released; the request is journaled (INTERNAL on I/O error)
  // before the backend applies it; a backend error removes the journal record and is returned as
  // is. A stop that reaches the id while it is pending cancels it: the backend is not called (or,
  // if already called, whatever it applied is reverted as soon as it returns), the journal record
  // is removed, `on_cancelled` (if set) is called by the stopping thread, and Apply returns
  // ABORTED naming the stop's reason. Nothing is left behind on any error (a handle whose revert
  // fails stays active and is retried after options.revert_retry, like any failed revert).
  Result<v1::FaultStatus> Apply(const v1::ApplyFaultRequest& request,
                                ApplyCancelledFn on_cancelled = nullptr);

  // Every check Apply makes on the request itself before anything reaches the journal or the
  // kernel: ids, lease ttl, kind, a backend for it, the backend's Validate (same errors, same
  // order), without the host's capability (DetectAll's result). No side effects; thread-safe.
  // The agent-request fuzz target drives it.
  Status ValidateRequest(const v1::ApplyFaultRequest& request) const;

  // Moves the lease of an active fault to now + lease_ttl_ms. INVALID_ARGUMENT for a bad id or
  // ttl; NOT_FOUND for a fault that is not active (FAILED_PRECONDITION when it was reverted
  // recently, naming the reason); FAILED_PRECONDITION when the lease has already expired, a
  // revert is in progress or the fault is still being applied.
  // The new deadline never passes applied + options.max_fault_duration (the renewal still
  // succeeds; the fault is then reverted with reason "max-duration"). Never blocks on I/O.
  Result<v1::FaultStatus> Renew(const std::string& fault_id, uint32_t lease_ttl_ms);

  // Reverts an active fault (backend handle, then the journal record) and returns its final
  // REVERTED status with evidence, reverted_at and `reason`. A fault still being applied is
  // cancelled without waiting for its backend (see Apply) and returned as REVERTED at once.
  // Idempotent: an unknown or already reverted id is OK and returns the last known status if
  // still remembered (nullopt otherwise); a revert of the same id already in progress on another
  // thread is waited for (it is never reverted twice). INVALID_ARGUMENT for a malformed id. A
  // backend error is returned; the fault then stays active and the agent retries the revert on
  // its own after options.revert_retry. Waits at most options.revert_deadline (the revert runs
  // on a revert worker, like RevertAll's): a revert still running then, or one never started
  // because every worker is held by a stuck revert, is DEADLINE_EXCEEDED naming the fault, which
  // stays active and journaled while its backend revert goes on in the background (the same
  // semantics as RevertAll's stuck revert). The lease thread reverts through this, so a stuck
  // backend never holds it.
  Result<std::optional<v1::FaultStatus>> Revert(const std::string& fault_id,
                                                const std::string& reason);

  // Reverts every fault of `run_id` (every fault when empty), cancelling those still being
  // applied, and returns their final statuses. INVALID_ARGUMENT for a malformed run id. The
  // reverts run concurrently (options.revert_parallelism at once), so one slow or stuck revert
  // never delays the others, and this returns when the last one ends or options.revert_deadline
  // has passed, whichever is first. Tries all of them even when some fail; then returns INTERNAL
  // naming each failure: a backend's error, a revert still running at the deadline ("did not
  // finish within N ms": it goes on in the background, and the fault stays active and journaled,
  // so its own revert, a later halt, the dead-man switch or the next start's sweep still undo
  // it), or one never started because every worker was held by a stuck revert (the fault stays
  // active and journaled). The others are reverted regardless. Never waits for an apply in
  // progress.
  Result<std::vector<v1::FaultStatus>> RevertAll(const std::string& run_id,
                                                 const std::string& reason);

  // Active faults with live evidence, then (if asked) recently reverted ones, newest first. A
  // fault still being applied is not listed (it is not in effect yet).
  std::vector<v1::FaultStatus> List(bool include_reverted) const;

  // Status of one fault, active or recently reverted (nullopt while it is being applied).
  std::optional<v1::FaultStatus> Get(const std::string& fault_id) const;

  // How many faults count against the cap now: active, being applied, or being reverted.
  size_t ActiveCount() const;
  // The limits this manager enforces (reported by GetInfo).
  const FaultManagerOptions& options() const { return options_; }

  // Call once at start, before serving (no Apply may run concurrently): reverts every journaled
  // fault with its backend's RevertOrphan and the recorded spec, removes the record (failures are
  // logged and kept for the next start), quarantines corrupt records, then runs
  // options.sweep_tables. Recovered faults are listed as REVERTED with reason "journal".
  RecoveryReport Recover();

  // Refuses further Apply calls (UNAVAILABLE), reverts every active fault with reason
  // "shutdown", cancels every apply in progress without waiting for it, and stops the lease
  // thread. Idempotent. Returns the RevertAll error, if any.
  Status Shutdown();

  // Waits at most `timeout` until no revert that RevertAll started is still running (one it
  // gave up on at its deadline included). True when none is. Thread-safe.
  bool WaitRevertsIdle(std::chrono::milliseconds timeout) const;

  // Reverts (reason "lease-expired") every fault whose lease is past due on the clock; returns
  // their ids. The lease thread does the same on its own; tests call this after moving a
  // FakeClock.
  std::vector<std::string> CheckLeases();

 private:
  enum class Phase { kApplying, kActive, kReverting };
  struct ActiveFault {
    v1::ApplyFaultRequest request;
    std::string kind;
    Phase phase = Phase::kApplying;
    std::shared_ptr<FaultHandle> handle;  // set once kActive
    int64_t applied_at_unix_ms = 0;
    MonoTime expires_at{};  // applied + options.max_fault_duration
    // kApplying only: the reason of the stop that cancelled it ("" while not cancelled), and the
    // Apply caller's callback (called once, then cleared).
    std::string cancel_reason;
    ApplyCancelledFn on_cancelled;
  };

  void OnLeaseExpired(const std::string& fault_id);
  // Ids, ttl and kind of an Apply request; the backend serving the kind.
  Result<FaultBackend*> BackendFor(const v1::ApplyFaultRequest& request) const;
  // Reverts or cancels one fault; the body of Revert.
  Result<std::optional<v1::FaultStatus>> RevertOne(const std::string& fault_id,
                                                   const std::string& reason);
  // The end of an Apply whose fault a stop cancelled while the backend was applying it.
  Status FinishCancelledApply(const std::string& fault_id, const std::string& reason,
                              Result<std::unique_ptr<FaultHandle>> handle);
  // Precondition: mu_ held.
  v1::FaultStatus ActiveStatusLocked(const ActiveFault& fault) const;
  std::optional<v1::FaultStatus> RecentLocked(const std::string& fault_id) const;
  void RememberLocked(v1::FaultStatus status);
  // The reason `fault_id` may not be applied again, or nullopt. Drops expired ids first.
  std::optional<std::string> AppliedOnceLocked(const std::string& fault_id);
  void ExpireAppliedOnceLocked();
  Status ValidateTtl(uint32_t lease_ttl_ms) const;
  // now + lease_ttl_ms, but never later than `expires_at`.
  MonoTime DeadlineFor(uint32_t lease_ttl_ms, MonoTime expires_at) const;

  FaultRegistry& registry_;
  Journal& journal_;
  const Clock& clock_;
  const FaultManagerOptions options_;
  const std::chrono::milliseconds apply_once_window_;
  const size_t max_apply_once_ids_;

  // Guards everything below; held only briefly, never across journal or backend calls except
  // GetEvidence (which backends keep cheap and thread-safe).
  mutable std::mutex mu_;
  // Signalled whenever a revert ends (a concurrent Revert of the same id waits on it).
  std::condition_variable revert_done_;
  std::map<std::string, ActiveFault> active_;  // every phase
  std::deque<v1::FaultStatus> recent_;         // newest at the front (display)
  // The "apply once" guard: id → (when it was reverted, why), and the same ids oldest first.
  struct Refused {
    MonoTime since;
    std::string reason;
  };
  std::map<std::string, Refused> applied_once_;
  std::deque<std::pair<MonoTime, std::string>> applied_once_order_;
  bool shutting_down_ = false;

  // Where RevertAll's reverts run (options.revert_parallelism workers).
  const std::shared_ptr<host::HostCallPool> revert_pool_;

  // Last: destroyed (and its thread joined) first, before the state its callback touches.
  LeaseKeeper lease_;
};

}  // namespace faultline::agent
