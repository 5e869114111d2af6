#include "controller/schedule/scheduler.h"

#include <algorithm>
#include <deque>
#include <regex>

#include "controller/schedule/cron.h"

namespace faultline::schedule {

namespace {

bool IsBlackout(const store::Schedule& s, const TimeZone::Civil& local) {
  char date[16];
  std::snprintf(date, sizeof date, "%04d-%02d-%02d", local.year, local.month, local.day);
  return std::find(s.blackout_dates.begin(), s.blackout_dates.end(), date) !=
         s.blackout_dates.end();
}

}  // namespace

Status ValidateSchedule(const store::Schedule& s) {
  static const std::regex kName("[a-z0-9][a-z0-9-]{0,62}");
  if (!std::regex_match(s.name, kName)) {
    return InvalidArgument("schedule name '" + s.name +
                           "' must be 1-63 of a-z, 0-9 and '-', starting with a letter or digit");
  }
  if (s.spec_yaml.empty()) return InvalidArgument("schedule " + s.name + " has no experiment");
  auto cron = CronExpression::Parse(s.cron);
  if (!cron.ok()) return InvalidArgument("cron: " + cron.status().message());
  auto tz = TimeZone::Load(s.tz);
  if (!tz.ok()) return InvalidArgument("tz: " + tz.status().message());
  if (!cron->NextAfter(SystemClock::Instance().WallUnixMs(), *tz)) {
    return InvalidArgument("cron: '" + s.cron + "' never fires (no such date in 5 years)");
  }
  if (auto w = RunWindow::Parse(s.window); !w.ok()) {
    return InvalidArgument("window: " + w.status().message());
  }
  for (const auto& d : s.blackout_dates) {
    if (auto st = ValidateDate(d); !st.ok()) {
      return InvalidArgument("blackout date: " + st.message());
    }
  }
  return Status::Ok();
}

namespace {
constexpr std::chrono::milliseconds kHaltTtl{100LL * 365 * 24 * 3600 * 1000};
}  // namespace

Status RecordHalt(store::RunStore& store, const std::string& holder) {
  auto held = store.TryAcquireLeadership(kHaltLock, holder, kHaltTtl);
  return held.ok() ? Status::Ok() : held.status();  // held by another controller: halted too
}

Status ClearHalt(store::RunStore& store) {
  auto current = store.CurrentLeader(kHaltLock);
  if (!current.ok()) return current.status();
  if (!current->has_value()) return Status::Ok();
  return store.ReleaseLeadership(kHaltLock, (*current)->holder);
}

Result<bool> HaltRecorded(store::RunStore& store) {
  auto current = store.CurrentLeader(kHaltLock);
  if (!current.ok()) return current.status();
  return current->has_value();
}

Scheduler::Scheduler(store::RunStore& store, Clock& clock, RunLauncher launcher,
                     SchedulerOptions options)
    : store_(store), clock_(clock), launcher_(std::move(launcher)), options_(std::move(options)) {}

Result<TickOutcome> Scheduler::Tick() {
  TickOutcome out;
  // Presence first: a controller that ticks is alive, so its running runs are not orphans.
  auto present = store_.TryAcquireLeadership(store::PresenceLock(options_.holder), options_.holder,
                                             options_.lease_ttl);
  if (!present.ok()) return present.status();
  auto held = store_.TryAcquireLeadership(options_.lock, options_.holder, options_.lease_ttl);
  if (!held.ok()) return held.status();
  out.leader = *held;
  if (!out.leader) return out;
  auto orphans = store_.MarkOrphanedRunsInterrupted();
  if (orphans.ok()) {
    out.interrupted = *orphans;
  } else {
    out.errors.push_back("marking orphaned runs: " + orphans.status().message());
  }
  auto schedules = store_.ListSchedules();
  if (!schedules.ok()) return schedules.status();
  int64_t now = clock_.WallUnixMs();
  for (const auto& s : *schedules) HandleSchedule(s, now, out);
  return out;
}

Status Scheduler::Resign() {
  // Presence stays until it expires: runs this controller still finishes are not orphans.
  return store_.ReleaseLeadership(options_.lock, options_.holder);
}

bool Scheduler::Record(store::Firing firing, TickOutcome& out) {
  firing.holder = options_.holder;
  Status s = store_.RecordFiring(firing);
  if (s.code() == StatusCode::kAlreadyExists) return false;  // another controller decided it
  if (!s.ok()) {
    out.errors.push_back("schedule " + firing.schedule + ": " + s.message());
    return false;
  }
  out.recorded.push_back(std::move(firing));
  return true;
}

void Scheduler::HandleSchedule(const store::Schedule& s, int64_t now, TickOutcome& out) {
  auto cron = CronExpression::Parse(s.cron);
  auto tz = TimeZone::Load(s.tz);
  auto window = RunWindow::Parse(s.window);
  if (!cron.ok() || !tz.ok() || !window.ok()) {
    out.errors.push_back("schedule " + s.name + " is invalid: " +
                         (!cron.ok() ? cron.status()
                          : !tz.ok() ? tz.status()
                                     : window.status())
                             .message());
    return;
  }
  auto last = store_.LastFiringDue(s.name);
  if (!last.ok()) {
    out.errors.push_back("schedule " + s.name + ": " + last.status().message());
    return;
  }
  // Due times owed: after the last decided one, or after the schedule was created.
  int64_t cursor = last->value_or(s.created_unix_ms);
  std::deque<int64_t> due;
  int64_t dropped = 0;
  int64_t last_dropped = 0;
  for (auto next = cron->NextAfter(cursor, *tz); next && *next <= now;
       next = cron->NextAfter(*next, *tz)) {
    due.push_back(*next);
    if (static_cast<int>(due.size()) > options_.max_recorded_per_tick) {
      last_dropped = due.front();
      due.pop_front();
      ++dropped;
    }
  }
  if (dropped > 0) {
    // A long outage: one firing stands for the oldest due times, so none is silently lost.
    Record(
        {s.name, last_dropped, 0,
         "missed:controller-down (+" + std::to_string(dropped - 1) + " earlier due times)", "", ""},
        out);
  }
  for (int64_t d : due) {
    TimeZone::Civil local = tz->ToLocal(d);
    std::string outcome;
    if (s.paused) {
      outcome = "skipped:paused";
    } else if (IsBlackout(s, local)) {
      outcome = "skipped:blackout";
    } else if (!window->Contains(local.hour, local.minute)) {
      outcome = "skipped:window";
    } else if (now - d > options_.start_deadline.count()) {
      outcome = "missed:controller-down";
    } else if (options_.halted && options_.halted()) {
      outcome = "skipped:halted";
    } else if (s.concurrency == store::ConcurrencyPolicy::kForbid) {
      store::RunFilter filter;
      filter.limit = 1;
      filter.source = "schedule:" + s.name;
      filter.state = store::RunState::kRunning;
      auto running = store_.ListRuns(filter);
      if (!running.ok()) {
        out.errors.push_back("schedule " + s.name + ": " + running.status().message());
        return;  // undecided: retried on the next tick
      }
      if (!running->empty()) outcome = "skipped:concurrency";
    }
    if (!outcome.empty()) {
      Record({s.name, d, 0, outcome, "", ""}, out);
      continue;
    }
    // Claim the due time first: only the controller whose insert succeeds starts the run.
    if (!Record({s.name, d, 0, "started", "", ""}, out)) continue;
    auto run = launcher_(s, d);
    store::Firing& mine = out.recorded.back();
    mine.outcome = run.ok() ? "started" : "failed:" + run.status().message();
    mine.run_id = run.ok() ? *run : "";
    if (auto st = store_.UpdateFiring(s.name, d, mine.outcome, mine.run_id); !st.ok()) {
      out.errors.push_back("schedule " + s.name + ": " + st.message());
    }
  }
}

}  // namespace faultline::schedule
