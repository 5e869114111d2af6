#pragma once
// Scheduler: decides, tick by tick, which scheduled game days are due, applies their policies
// and records what became of every due time in the RunStore — including the ones nobody acted
// on in time (missed), so a controller outage shows in the history instead of vanishing.
//
// Several controllers may run a Scheduler on one (PostgreSQL) store: only the holder of the
// store's "scheduler" lease acts, and a due time is claimed by inserting its firing (unique per
// schedule and due time) before its run starts, so it starts once even if two controllers both
// believe they lead for a moment.
//
// For each due time d of a schedule (cron in its time zone) after the last recorded one — or
// after the schedule's creation — and not after now, in order:
//   paused                                   → skipped:paused
//   d's local date is a blackout date        → skipped:blackout
//   d's local time is outside the run window → skipped:window
//   now - d > start_deadline                 → missed:controller-down (no leader saw it in time)
//   a halt is in force (SchedulerOptions::halted) → skipped:halted (until `faultline resume`)
//   concurrency forbid and a run of this schedule is still running → skipped:concurrency
//   otherwise                                → started (the launcher starts the run) or
//                                              failed:<why> when it cannot be started

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controller/store/run_store.h"

namespace faultline::schedule {

// Starts the run of `schedule` for due time `due_unix_ms` and returns its run id. The launcher
// must record the run in the store with source "schedule:<name>", state running and owner =
// SchedulerOptions::holder before it returns (concurrency: forbid looks for it; a run whose owner
// stops renewing its presence is marked interrupted). Called on the Tick() thread.
using RunLauncher =
    std::function<Result<std::string>(const store::Schedule& schedule, int64_t due_unix_ms)>;

struct SchedulerOptions {
  std::string holder;  // this controller's id (the lease holder and the firings' `holder`)
  std::string lock = "scheduler";
  std::chrono::milliseconds lease_ttl{30'000};  // tick well within it (e.g. every 5 s)
  // A due time first seen later than this after it passed is missed, not started late.
  std::chrono::milliseconds start_deadline{60'000};
  // Due times recorded one by one per tick and schedule; older ones of a long outage are
  // summed up in one firing ("missed:controller-down (+N earlier due times)").
  int max_recorded_per_tick = 100;
  // Whether a halt is in force (`faultline halt` until `faultline resume`): due times are then
  // recorded skipped:halted instead of starting. Empty: never halted. Called on the Tick() thread.
  std::function<bool()> halted;
};

struct TickOutcome {
  bool leader = false;
  int interrupted = 0;                  // runs of vanished controllers marked interrupted
  std::vector<store::Firing> recorded;  // what this tick recorded, in order
  std::vector<std::string> errors;      // per-schedule problems (invalid cron, store errors)
};

class Scheduler {
 public:
  // `store` and `clock` must outlive the Scheduler.
  Scheduler(store::RunStore& store, Clock& clock, RunLauncher launcher, SchedulerOptions options);

  // One pass: renew this controller's presence lease (store::PresenceLock(holder)); acquire or
  // renew the scheduler lease; if held, mark the runs of vanished controllers interrupted
  // (store::MarkOrphanedRunsInterrupted) and handle every schedule's due times up to now.
  // Returns an error only when the store cannot be reached for the lease; per-schedule problems
  // land in TickOutcome::errors and do not stop the other schedules. Not reentrant: call it
  // from one thread (the controller's scheduling loop).
  Result<TickOutcome> Tick();

  // Gives the lease up (on shutdown), so another controller takes over without waiting for it
  // to expire. Idempotent.
  Status Resign();

 private:
  void HandleSchedule(const store::Schedule& schedule, int64_t now, TickOutcome& out);
  // Records one firing; false when another controller already recorded that due time.
  bool Record(store::Firing firing, TickOutcome& out);

  store::RunStore& store_;
  Clock& clock_;
  RunLauncher launcher_;
  SchedulerOptions options_;
};

// The halt in a shared store, so every controller on it honours a `faultline halt` given to any
// of them: a lease named kHaltLock held (with a TTL of a century) from halt until resume. A
// lease row and not a new table: leases are already atomic across controllers, and a store of
// an older schema version knows them.
inline constexpr char kHaltLock[] = "halt";
// Records the halt (by `holder`, a controller id). Idempotent: a halt already recorded by
// another controller stays as it is.
Status RecordHalt(store::RunStore& store, const std::string& holder);
// Lifts a recorded halt, whoever recorded it. Idempotent.
Status ClearHalt(store::RunStore& store);
// Whether a halt is recorded.
Result<bool> HaltRecorded(store::RunStore& store);

// Checks a schedule's fields (name, cron, time zone, window, blackout dates) as `schedule add`
// and the controller do before storing it. INVALID_ARGUMENT naming the field.
Status ValidateSchedule(const store::Schedule& schedule);

}  // namespace faultline::schedule
