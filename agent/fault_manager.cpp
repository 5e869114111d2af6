#include "agent/fault_manager.h"

#include <google/protobuf/util/message_differencer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <utility>

#include "agent/workload_router.h"
#include "common/faultspec/fault_kinds.h"
#include "common/ids.h"

namespace faultline::agent {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr char kReasonLeaseExpired[] = "lease-expired";
constexpr char kReasonJournal[] = "journal";
constexpr char kReasonShutdown[] = "shutdown";
constexpr char kReasonMaxDuration[] = "max-duration";

// The log line for a revert: an unattended revert (lease expiry) is something an operator will
// want to notice, the others are routine.
void LogRevert(const std::string& fault_id, const std::string& run_id, const std::string& kind,
               const std::string& reason) {
  auto level = (reason == kReasonLeaseExpired || reason == kReasonMaxDuration)
                   ? spdlog::level::warn
                   : spdlog::level::info;
  spdlog::log(level, "fault reverted: fault_id={} run_id={} kind={} reason={}", fault_id, run_id,
              kind, reason);
}

}  // namespace

FaultManager::FaultManager(FaultRegistry& registry, Journal& journal, const Clock& clock,
                           FaultManagerOptions options)
    : registry_(registry),
      journal_(journal),
      clock_(clock),
      options_(std::move(options)),
      apply_once_window_(options_.apply_once_window.count() > 0
                             ? options_.apply_once_window
                             : std::max(options_.max_lease_ttl, options_.max_fault_duration)),
      max_apply_once_ids_(options_.max_apply_once_ids > 0
                              ? options_.max_apply_once_ids
                              : std::max<size_t>(4096, 256 * size_t{options_.max_active_faults})),
      revert_pool_(std::make_shared<host::HostCallPool>(host::HostCallPoolOptions{
          .name = "revert", .max_workers = std::max<size_t>(1, options_.revert_parallelism)})),
      lease_(clock, [this](const std::string& id) { OnLeaseExpired(id); }) {}

FaultManager::~FaultManager() { lease_.Stop(); }

void FaultManager::StartLeaseThread() { lease_.Start(); }

Status FaultManager::ValidateTtl(uint32_t lease_ttl_ms) const {
  if (lease_ttl_ms == 0) return InvalidArgument("lease_ttl_ms must be greater than 0");
  if (milliseconds(lease_ttl_ms) > options_.max_lease_ttl) {
    return InvalidArgument("lease_ttl_ms " + std::to_string(lease_ttl_ms) +
                           " exceeds this agent's maximum of " +
                           std::to_string(options_.max_lease_ttl.count()) + " ms");
  }
  return Status::Ok();
}

MonoTime FaultManager::DeadlineFor(uint32_t lease_ttl_ms, MonoTime expires_at) const {
  return std::min<MonoTime>(clock_.Now() + milliseconds(lease_ttl_ms), expires_at);
}

v1::FaultStatus FaultManager::ActiveStatusLocked(const ActiveFault& fault) const {
  v1::FaultStatus status;
  status.set_run_id(fault.request.run_id());
  status.set_fault_id(fault.request.fault_id());
  *status.mutable_spec() = fault.request.spec();
  if (fault.request.has_resolved_workload())
    *status.mutable_workload() = fault.request.resolved_workload();
  status.set_state(v1::ACTIVE);
  status.set_applied_at_unix_ms(fault.applied_at_unix_ms);
  if (auto deadline = lease_.Deadline(fault.request.fault_id())) {
    status.set_lease_expires_unix_ms(clock_.WallUnixMs() +
                                     duration_cast<milliseconds>(*deadline - clock_.Now()).count());
  }
  if (fault.handle) {
    for (const auto& [name, value] : fault.handle->GetEvidence()) {
      (*status.mutable_evidence())[name] = value;
    }
  }
  return status;
}

std::optional<v1::FaultStatus> FaultManager::RecentLocked(const std::string& fault_id) const {
  for (const v1::FaultStatus& status : recent_) {
    if (status.fault_id() == fault_id) return status;
  }
  return std::nullopt;
}

void FaultManager::RememberLocked(v1::FaultStatus status) {
  // One entry per id (a reverted id is never applied again; see Apply).
  for (auto it = recent_.begin(); it != recent_.end(); ++it) {
    if (it->fault_id() == status.fault_id()) {
      recent_.erase(it);
      break;
    }
  }
  // The "apply once" guard is kept apart from this display list: it is bounded by time, not by
  // how many other faults were reverted since.
  const MonoTime now = clock_.Now();
  applied_once_.insert_or_assign(status.fault_id(), Refused{now, status.revert_reason()});
  applied_once_order_.emplace_back(now, status.fault_id());
  recent_.push_front(std::move(status));
  while (recent_.size() > options_.max_recent_reverted) recent_.pop_back();
}

void FaultManager::ExpireAppliedOnceLocked() {
  const MonoTime now = clock_.Now();
  while (!applied_once_order_.empty() &&
         now - applied_once_order_.front().first >= apply_once_window_) {
    const auto& [since, id] = applied_once_order_.front();
    auto it = applied_once_.find(id);
    // A later entry for the same id (reverted again after a retried revert) keeps it refused.
    if (it != applied_once_.end() && it->second.since == since) applied_once_.erase(it);
    applied_once_order_.pop_front();
  }
}

std::optional<std::string> FaultManager::AppliedOnceLocked(const std::string& fault_id) {
  ExpireAppliedOnceLocked();
  auto it = applied_once_.find(fault_id);
  if (it == applied_once_.end()) return std::nullopt;
  return it->second.reason;
}

Result<FaultBackend*> FaultManager::BackendFor(const v1::ApplyFaultRequest& request) const {
  if (!IsValidRunId(request.run_id())) {
    return InvalidArgument("run_id '" + request.run_id() + "' is invalid: want [a-z0-9]{1,32}");
  }
  if (!IsValidFaultId(request.fault_id())) {
    return InvalidArgument("fault_id '" + request.fault_id() +
                           "' is invalid: want [a-z0-9_]{1,48}");
  }
  if (Status s = ValidateTtl(request.lease_ttl_ms()); !s.ok()) return s;
  const std::string kind = FaultKindOf(request.spec());
  if (kind.empty()) return InvalidArgument("spec: no fault kind is set");
  FaultBackend* backend = registry_.Find(kind);
  if (backend == nullptr) {
    return FailedPrecondition("fault kind '" + kind + "' is not supported by this agent");
  }
  // Every field, whatever backend serves the kind: the agent trusts no caller.
  if (Status s = faultspec::ValidateFaultSpec(request.spec()); !s.ok()) return s;
  return backend;
}

namespace {

// A fault on the host, or inside the workload its request names (agent/workload_router.h).
Result<std::unique_ptr<FaultHandle>> ApplyWithBackend(FaultBackend& backend,
                                                      const v1::ApplyFaultRequest& request) {
  if (!request.has_resolved_workload()) return backend.Apply(request.fault_id(), request.spec());
  auto workload = WorkloadFromProto(request.resolved_workload());
  if (!workload.ok()) return workload.status();
  return backend.ApplyInWorkload(request.fault_id(), request.spec(), *workload);
}

Status RevertOrphanWithBackend(FaultBackend& backend, const v1::ApplyFaultRequest& entry) {
  if (!entry.has_resolved_workload()) return backend.RevertOrphan(entry.fault_id(), entry.spec());
  auto workload = WorkloadFromProto(entry.resolved_workload());
  if (!workload.ok()) return workload.status();
  return backend.RevertOrphanInWorkload(entry.fault_id(), entry.spec(), *workload);
}

}  // namespace

Status FaultManager::ValidateRequest(const v1::ApplyFaultRequest& request) const {
  auto backend = BackendFor(request);
  if (!backend.ok()) return backend.status();
  return (*backend)->Validate(request.spec());
}

Result<v1::FaultStatus> FaultManager::Apply(const v1::ApplyFaultRequest& request,
                                            ApplyCancelledFn on_cancelled) {
  auto found = BackendFor(request);
  if (!found.ok()) return found.status();
  FaultBackend* backend = *found;
  const std::string kind = FaultKindOf(request.spec());
  if (Status s = registry_.CheckAvailable(kind); !s.ok()) return s;
  if (Status s = backend->Validate(request.spec()); !s.ok()) return s;
  const std::string& id = request.fault_id();

  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return Unavailable("the agent is shutting down");
    auto it = active_.find(id);
    if (it != active_.end()) {
      const ActiveFault& existing = it->second;
      if (existing.request.run_id() != request.run_id() ||
          !google::protobuf::util::MessageDifferencer::Equals(existing.request.spec(),
                                                              request.spec())) {
        return AlreadyExists("fault " + id + " is already active with a different run or spec");
      }
      // A cancelled apply whose revert failed is still here (kActive) until the retry succeeds:
      // it is never renewed.
      if (existing.phase == Phase::kApplying || !existing.cancel_reason.empty()) {
        if (!existing.cancel_reason.empty()) {
          return FailedPrecondition("fault " + id + " was already reverted (" +
                                    existing.cancel_reason +
                                    "); a fault id is applied at most once");
        }
        return Unavailable("fault " + id + " is still being applied; retry later");
      }
      if (existing.phase == Phase::kReverting ||
          !lease_.Renew(id, DeadlineFor(request.lease_ttl_ms(), existing.expires_at))) {
        return FailedPrecondition("the lease of fault " + id +
                                  " has expired and the fault is being reverted");
      }
      return ActiveStatusLocked(existing);
    }
    // A fault id is applied at most once. An apply that arrives after its fault was reverted is
    // a stale attempt (a retry whose first try was delayed, or one overtaken by a halt): applying
    // it would put the fault back after its run ended, until the lease ran out.
    if (auto why = AppliedOnceLocked(id)) {
      return FailedPrecondition("fault " + id + " was already reverted (" + *why +
                                "); a fault id is applied at most once");
    }
    if (active_.size() >= options_.max_active_faults) {
      return ResourceExhausted("this agent already has " + std::to_string(active_.size()) +
                               " active faults (the maximum)");
    }
    if (applied_once_.size() >= max_apply_once_ids_) {
      return ResourceExhausted("this agent reverted " + std::to_string(applied_once_.size()) +
                               " faults in the last " + std::to_string(apply_once_window_.count()) +
                               " ms (the most it remembers); retry later");
    }
    // Reserve the id: it counts against the cap, and a stop that comes now cancels it.
    ActiveFault pending;
    pending.request = request;
    pending.kind = kind;
    pending.phase = Phase::kApplying;
    pending.on_cancelled = std::move(on_cancelled);
    active_.emplace(id, std::move(pending));
  }
  // Removes the reservation of an apply that did not take effect.
  auto release = [this, &id] {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(id);
    revert_done_.notify_all();
  };
  // The cancellation reason, if a stop has reached this apply.
  auto cancelled = [this, &id]() -> std::string {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(id);
    return it == active_.end() ? std::string("revert") : it->second.cancel_reason;
  };

  // Journal first: if the agent dies anywhere after this line, the next start reverts the fault.
  if (Status s = journal_.Record(request); !s.ok()) {
    release();
    return s;
  }
  if (std::string reason = cancelled(); !reason.empty()) {
    return FinishCancelledApply(id, reason, Status{StatusCode::kAborted, "not applied"});
  }
  // No lock here: the backend may take long (host I/O, name resolution); stops go ahead.
  Result<std::unique_ptr<FaultHandle>> handle = ApplyWithBackend(*backend, request);
  if (std::string reason = cancelled(); !reason.empty()) {
    return FinishCancelledApply(id, reason, std::move(handle));
  }
  if (!handle.ok()) {
    if (Status s = journal_.Remove(id); !s.ok()) {
      spdlog::error("fault {}: apply failed and its journal record could not be removed: {}", id,
                    s.ToString());
    }
    spdlog::warn("fault apply failed: fault_id={} run_id={} kind={} error={}", id, request.run_id(),
                 kind, handle.status().ToString());
    release();
    return handle.status();
  }

  std::unique_lock<std::mutex> lock(mu_);
  auto it = active_.find(id);
  if (it == active_.end() || !it->second.cancel_reason.empty()) {
    // Cancelled between the check above and this lock.
    std::string reason = it == active_.end() ? "revert" : it->second.cancel_reason;
    lock.unlock();
    return FinishCancelledApply(id, reason, std::move(handle));
  }
  ActiveFault& fault = it->second;
  fault.phase = Phase::kActive;
  fault.on_cancelled = nullptr;
  fault.handle = std::shared_ptr<FaultHandle>(std::move(handle).value());
  fault.applied_at_unix_ms = clock_.WallUnixMs();
  fault.expires_at = clock_.Now() + options_.max_fault_duration;
  lease_.Set(id, DeadlineFor(request.lease_ttl_ms(), fault.expires_at));
  spdlog::info("fault applied: fault_id={} run_id={} kind={} lease_ttl_ms={}", id, request.run_id(),
               kind, request.lease_ttl_ms());
  if (options_.on_applied) options_.on_applied(kind);
  return ActiveStatusLocked(fault);
}

Status FaultManager::FinishCancelledApply(const std::string& fault_id, const std::string& reason,
                                          Result<std::unique_ptr<FaultHandle>> handle) {
  std::string what =
      "fault " + fault_id + " was cancelled (" + reason + ") while it was being applied";
  if (handle.ok()) {
    std::shared_ptr<FaultHandle> applied(std::move(handle).value());
    if (Status reverted = applied->Revert(); !reverted.ok()) {
      // Still in effect: keep it active and journaled, and retry like any failed revert.
      std::lock_guard<std::mutex> lock(mu_);
      auto it = active_.find(fault_id);
      if (it != active_.end()) {
        it->second.phase = Phase::kActive;
        it->second.handle = applied;
        it->second.applied_at_unix_ms = clock_.WallUnixMs();
        it->second.expires_at = clock_.Now() + options_.max_fault_duration;
        lease_.Set(fault_id, clock_.Now() + options_.revert_retry);
      }
      revert_done_.notify_all();
      spdlog::error("fault {}: {}; reverting what it applied failed: {} (retried)", fault_id, what,
                    reverted.ToString());
      return Status{
          StatusCode::kAborted,
          what + "; reverting what it applied failed (the agent retries): " + reverted.message()};
    }
    what += "; what it applied was reverted";
  } else {
    what += "; nothing was applied";
  }
  if (Status s = journal_.Remove(fault_id); !s.ok()) {
    spdlog::error("fault {}: cancelled but its journal record could not be removed: {}", fault_id,
                  s.ToString());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(fault_id);
  }
  revert_done_.notify_all();
  spdlog::warn("fault apply cancelled: fault_id={} reason={}", fault_id, reason);
  return Status{StatusCode::kAborted, what};
}

Result<v1::FaultStatus> FaultManager::Renew(const std::string& fault_id, uint32_t lease_ttl_ms) {
  if (!IsValidFaultId(fault_id)) return InvalidArgument("fault_id '" + fault_id + "' is invalid");
  if (Status s = ValidateTtl(lease_ttl_ms); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(fault_id);
  if (it == active_.end()) {
    if (auto recent = RecentLocked(fault_id)) {
      return FailedPrecondition("fault " + fault_id + " was already reverted (" +
                                recent->revert_reason() + ")");
    }
    return NotFound("fault " + fault_id + " is not active on this agent");
  }
  if (it->second.phase == Phase::kApplying) {
    return FailedPrecondition("fault " + fault_id + " is still being applied");
  }
  if (!it->second.cancel_reason.empty()) {
    return FailedPrecondition("fault " + fault_id + " was already reverted (" +
                              it->second.cancel_reason + ")");
  }
  if (it->second.phase == Phase::kReverting ||
      !lease_.Renew(fault_id, DeadlineFor(lease_ttl_ms, it->second.expires_at))) {
    return FailedPrecondition("the lease of fault " + fault_id +
                              " has expired and the fault is being reverted");
  }
  return ActiveStatusLocked(it->second);
}

Result<std::optional<v1::FaultStatus>> FaultManager::Revert(const std::string& fault_id,
                                                            const std::string& reason) {
  if (!IsValidFaultId(fault_id)) return InvalidArgument("fault_id '" + fault_id + "' is invalid");
  // On a revert worker, as in RevertAll, so the caller (a gRPC handler, the lease thread) waits
  // at most options_.revert_deadline; what the revert returns lands in `single`, shared with the
  // worker so that a revert still running after the deadline writes into live memory.
  struct Single {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<std::optional<v1::FaultStatus>>> result;
  };
  auto single = std::make_shared<Single>();
  const auto deadline = std::chrono::steady_clock::now() + options_.revert_deadline;
  const bool started = revert_pool_->TryStart(
      [this, single, fault_id, reason] {
        Result<std::optional<v1::FaultStatus>> result = RevertOne(fault_id, reason);
        {
          std::lock_guard<std::mutex> lock(single->mu);
          single->result = std::move(result);
        }
        single->cv.notify_all();
      },
      deadline);
  if (!started) {
    return DeadlineExceeded("fault " + fault_id +
                            " not reverted: every revert worker is held by a revert that has not "
                            "returned (the fault stays active and journaled)");
  }
  std::unique_lock<std::mutex> lock(single->mu);
  if (!single->cv.wait_until(lock, deadline, [&] { return single->result.has_value(); })) {
    const std::string why = "revert did not finish within " +
                            std::to_string(options_.revert_deadline.count()) +
                            " ms (it goes on in the background; the fault stays journaled)";
    spdlog::error("fault {}: {}", fault_id, why);
    return DeadlineExceeded("fault " + fault_id + ": " + why);
  }
  return std::move(*single->result);
}

Result<std::optional<v1::FaultStatus>> FaultManager::RevertOne(const std::string& fault_id,
                                                               const std::string& reason) {
  std::shared_ptr<FaultHandle> handle;
  std::string run_id;
  std::string kind;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = active_.find(fault_id);
    // Another thread is reverting this fault: wait for it (a backend revert is short), then
    // look again (it may have failed and left the fault active).
    while (it != active_.end() && it->second.phase == Phase::kReverting) {
      revert_done_.wait(lock);
      it = active_.find(fault_id);
    }
    if (it == active_.end()) return RecentLocked(fault_id);  // idempotent
    ActiveFault& fault = it->second;
    if (fault.phase == Phase::kApplying) {
      // Cancel without waiting: the Apply reverts whatever its backend applied when it returns.
      if (!fault.cancel_reason.empty()) return RecentLocked(fault_id);
      fault.cancel_reason = reason;
      ApplyCancelledFn notify = std::move(fault.on_cancelled);
      fault.on_cancelled = nullptr;
      v1::FaultStatus status;
      status.set_run_id(fault.request.run_id());
      status.set_fault_id(fault_id);
      *status.mutable_spec() = fault.request.spec();
      if (fault.request.has_resolved_workload())
        *status.mutable_workload() = fault.request.resolved_workload();
      status.set_state(v1::REVERTED);
      status.set_reverted_at_unix_ms(clock_.WallUnixMs());
      status.set_revert_reason(reason);
      RememberLocked(status);
      LogRevert(fault_id, fault.request.run_id(), fault.kind,
                reason + " (cancelled while applying)");
      lock.unlock();
      if (notify) {
        notify(Status{StatusCode::kAborted, "fault " + fault_id + " was cancelled (" + reason +
                                                ") while it was being applied"});
      }
      return std::optional<v1::FaultStatus>(std::move(status));
    }
    fault.phase = Phase::kReverting;
    lease_.Remove(fault_id);
    handle = fault.handle;
    run_id = fault.request.run_id();
    kind = fault.kind;
  }

  Status reverted = handle ? handle->Revert() : Status::Ok();
  if (!reverted.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = active_.find(fault_id);
      if (it != active_.end()) it->second.phase = Phase::kActive;
      // The fault may still be in effect: keep it active and journaled, and let the lease thread
      // try again rather than depending on the caller to.
      lease_.Set(fault_id, clock_.Now() + options_.revert_retry);
    }
    revert_done_.notify_all();
    spdlog::error("fault revert failed: fault_id={} run_id={} kind={} reason={} error={}", fault_id,
                  run_id, kind, reason, reverted.ToString());
    return reverted;
  }
  if (Status s = journal_.Remove(fault_id); !s.ok()) {
    // Harmless for correctness (RevertOrphan is idempotent) but the next start will log it.
    spdlog::error("fault {} reverted but its journal record could not be removed: {}", fault_id,
                  s.ToString());
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(fault_id);
  v1::FaultStatus status = ActiveStatusLocked(it->second);
  status.set_state(v1::REVERTED);
  status.set_reverted_at_unix_ms(clock_.WallUnixMs());
  status.set_revert_reason(reason);
  status.clear_lease_expires_unix_ms();
  active_.erase(it);
  RememberLocked(status);
  revert_done_.notify_all();
  LogRevert(fault_id, run_id, kind, reason);
  if (options_.on_reverted) options_.on_reverted(kind, reason);
  return std::optional<v1::FaultStatus>(std::move(status));
}

Result<std::vector<v1::FaultStatus>> FaultManager::RevertAll(const std::string& run_id,
                                                             const std::string& reason) {
  if (!run_id.empty() && !IsValidRunId(run_id)) {
    return InvalidArgument("run_id '" + run_id + "' is invalid: want [a-z0-9]{1,32}");
  }
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, fault] : active_) {
      if (run_id.empty() || fault.request.run_id() == run_id) ids.push_back(id);
    }
  }
  // Each revert runs on a worker of its own; what it returns lands in `batch`, which the workers
  // share with this call so that one still running after the deadline writes into live memory.
  struct Batch {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<Result<std::optional<v1::FaultStatus>>>> results;
    size_t finished = 0;
  };
  auto batch = std::make_shared<Batch>();
  batch->results.resize(ids.size());
  const auto deadline = std::chrono::steady_clock::now() + options_.revert_deadline;
  size_t started = 0;
  for (; started < ids.size(); ++started) {
    bool ok = revert_pool_->TryStart(
        [this, batch, i = started, id = ids[started], reason] {
          Result<std::optional<v1::FaultStatus>> result = RevertOne(id, reason);
          {
            std::lock_guard<std::mutex> lock(batch->mu);
            batch->results[i] = std::move(result);
            ++batch->finished;
          }
          batch->cv.notify_all();
        },
        deadline);
    if (!ok) break;  // every worker is held by a stuck revert until the deadline
  }
  std::unique_lock<std::mutex> lock(batch->mu);
  batch->cv.wait_until(lock, deadline, [&] { return batch->finished == started; });

  std::vector<v1::FaultStatus> reverted;
  std::string failures;
  auto fail = [&failures](const std::string& id, const std::string& why) {
    failures += (failures.empty() ? "" : "; ") + id + ": " + why;
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i >= started) {
      fail(ids[i],
           "not reverted: every revert worker is held by a revert that has not returned "
           "(the fault stays active and journaled)");
    } else if (!batch->results[i].has_value()) {
      const std::string why = "revert did not finish within " +
                              std::to_string(options_.revert_deadline.count()) +
                              " ms (it goes on in the background; the fault stays journaled)";
      spdlog::error("fault {}: {}", ids[i], why);
      fail(ids[i], why);
    } else if (!batch->results[i]->ok()) {
      fail(ids[i], batch->results[i]->status().message());
    } else if (batch->results[i]->value().has_value()) {
      reverted.push_back(std::move(*batch->results[i]->value()));
    }
  }
  if (!failures.empty()) return Internal("some faults could not be reverted: " + failures);
  return reverted;
}

bool FaultManager::WaitRevertsIdle(std::chrono::milliseconds timeout) const {
  return revert_pool_->WaitIdle(timeout);
}

std::vector<v1::FaultStatus> FaultManager::List(bool include_reverted) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::FaultStatus> list;
  for (const auto& [id, fault] : active_) {
    if (fault.phase != Phase::kApplying) list.push_back(ActiveStatusLocked(fault));
  }
  if (include_reverted) list.insert(list.end(), recent_.begin(), recent_.end());
  return list;
}

std::optional<v1::FaultStatus> FaultManager::Get(const std::string& fault_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(fault_id);
  if (it != active_.end() && it->second.phase != Phase::kApplying) {
    return ActiveStatusLocked(it->second);
  }
  return RecentLocked(fault_id);
}

size_t FaultManager::ActiveCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_.size();
}

RecoveryReport FaultManager::Recover() {
  RecoveryReport report;
  JournalContents contents = journal_.LoadAll();
  for (JournalProblem& problem : contents.problems) {
    spdlog::error("journal: unusable record {}: {}", problem.path, problem.reason);
    if (Status s = journal_.Quarantine(problem.path); !s.ok()) {
      spdlog::error("journal: {}", s.ToString());
    }
    report.corrupt.push_back(std::move(problem));
  }
  for (const v1::ApplyFaultRequest& entry : contents.entries) {
    const std::string& id = entry.fault_id();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_.count(id) != 0) continue;  // applied by this process: not an orphan
    }
    const std::string kind = FaultKindOf(entry.spec());
    FaultBackend* backend = registry_.Find(kind);
    if (backend == nullptr) {
      std::string reason = "no backend for fault kind '" + kind + "'; record kept";
      spdlog::error("journal: cannot revert orphaned fault {} (run {}): {}", id, entry.run_id(),
                    reason);
      report.failed.push_back({id, reason});
      continue;
    }
    Status reverted = RevertOrphanWithBackend(*backend, entry);
    if (reverted.code() == StatusCode::kNotFound && entry.has_resolved_workload()) {
      // The workload's namespace is gone, and the fault's kernel state with it: reported, kept
      // out of `failed`, and the record goes.
      spdlog::warn("journal: fault {} (run {}, kind {}) went with its workload: {}", id,
                   entry.run_id(), kind, reverted.message());
      report.gone_with_workload.push_back(id);
      reverted = Status::Ok();
    }
    if (Status s = reverted; !s.ok()) {
      spdlog::error(
          "journal: reverting orphaned fault {} (run {}, kind {}) failed: {}; record "
          "kept for the next start",
          id, entry.run_id(), kind, s.ToString());
      report.failed.push_back({id, s.ToString()});
      continue;
    }
    if (Status s = journal_.Remove(id); !s.ok()) {
      spdlog::error("journal: {}", s.ToString());
    }
    v1::FaultStatus status;
    status.set_run_id(entry.run_id());
    status.set_fault_id(id);
    *status.mutable_spec() = entry.spec();
    if (entry.has_resolved_workload()) *status.mutable_workload() = entry.resolved_workload();
    status.set_state(v1::REVERTED);
    status.set_reverted_at_unix_ms(clock_.WallUnixMs());
    status.set_revert_reason(kReasonJournal);
    {
      std::lock_guard<std::mutex> lock(mu_);
      RememberLocked(std::move(status));
    }
    LogRevert(id, entry.run_id(), kind, kReasonJournal);
    if (options_.on_reverted) options_.on_reverted(kind, kReasonJournal);
    report.reverted.push_back(id);
  }
  if (options_.sweep_tables) {
    Result<std::vector<std::string>> swept = options_.sweep_tables();
    if (!swept.ok()) {
      report.sweep_status = swept.status();
      spdlog::error("sweeping leftover faultline_* tables failed: {}", swept.status().ToString());
    } else {
      for (const std::string& table : *swept) {
        spdlog::warn("swept leftover nftables table {} (not in the journal)", table);
      }
      report.swept_tables = std::move(swept).value();
    }
  }
  return report;
}

Status FaultManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  Result<std::vector<v1::FaultStatus>> reverted = RevertAll("", kReasonShutdown);
  lease_.Stop();
  return reverted.status();
}

std::vector<std::string> FaultManager::CheckLeases() { return lease_.CheckExpired(); }

void FaultManager::OnLeaseExpired(const std::string& fault_id) {
  const char* reason = kReasonLeaseExpired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(fault_id);
    if (it != active_.end() && clock_.Now() >= it->second.expires_at) reason = kReasonMaxDuration;
  }
  Result<std::optional<v1::FaultStatus>> result = Revert(fault_id, reason);
  if (!result.ok()) {
    spdlog::error("fault {}: revert after lease expiry failed: {}", fault_id,
                  result.status().ToString());
  }
}

}  // namespace faultline::agent
