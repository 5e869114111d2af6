#include "controller/daemon/schedule_loop.h"

#include <spdlog/spdlog.h>

#include "controller/report/report_model.h"

namespace faultline::daemon {

Status ValidateScheduleLoopOptions(const ScheduleLoopOptions& o) {
  if (o.tick.count() <= 0) return InvalidArgument("--schedule-tick must be greater than 0");
  if (o.tick * 3 > o.scheduler.lease_ttl) {
    return InvalidArgument("--schedule-tick (" + std::to_string(o.tick.count()) +
                           " ms) must be at most a third of --schedule-lease (" +
                           std::to_string(o.scheduler.lease_ttl.count()) + " ms)");
  }
  if (o.scheduler.start_deadline < o.tick * 2) {
    return InvalidArgument("--schedule-start-deadline (" +
                           std::to_string(o.scheduler.start_deadline.count()) +
                           " ms) must be at least two --schedule-tick");
  }
  return Status::Ok();
}

ScheduleLoop::ScheduleLoop(ControllerService& service, store::RunStore& store, Clock& clock,
                           ScheduleLoopOptions options)
    : service_(service), options_(std::move(options)) {
  schedule::SchedulerOptions sched = options_.scheduler;
  sched.halted = [&service] { return service.halted(); };
  auto launch = [&service](const store::Schedule& s, int64_t) -> Result<std::string> {
    RunRequest run;
    run.experiment_yaml = s.spec_yaml;
    run.file_name = "schedule " + s.name;
    run.source = "schedule:" + s.name;
    return service.StartRun(std::move(run));
  };
  scheduler_ = std::make_unique<schedule::Scheduler>(store, clock, launch, std::move(sched));
  thread_ = std::thread([this] { Loop(); });
}

ScheduleLoop::~ScheduleLoop() { Stop(); }

void ScheduleLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (Status s = scheduler_->Resign(); !s.ok()) {
    spdlog::warn("scheduler lease not given up (it expires on its own): {}", s.message());
  }
}

void ScheduleLoop::Loop() {
  bool leader = false;
  bool reachable = true;
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    service_.SyncHaltWithStore();
    Result<schedule::TickOutcome> out = scheduler_->Tick();
    if (!out.ok()) {
      // Without the store no lease is renewed: another controller takes over once it lapses.
      if (reachable) spdlog::error("scheduler: store unreachable: {}", out.status().message());
      reachable = false;
    } else {
      if (!reachable) spdlog::info("scheduler: store reachable again");
      reachable = true;
      if (out->leader != leader) {
        spdlog::info("scheduler: this controller {} the scheduling leader",
                     out->leader ? "is now" : "is no longer");
        leader = out->leader;
      }
      if (out->interrupted > 0) {
        spdlog::warn("scheduler: {} run(s) of vanished controllers marked interrupted",
                     out->interrupted);
      }
      for (const auto& f : out->recorded) {
        spdlog::info("schedule {}: due {}: {}{}", f.schedule, report::IsoTime(f.due_unix_ms),
                     f.outcome, f.run_id.empty() ? "" : " (run " + f.run_id + ")");
      }
      for (const auto& e : out->errors) spdlog::error("scheduler: {}", e);
    }
    lock.lock();
    wake_.wait_for(lock, options_.tick, [this] { return stop_; });
  }
}

}  // namespace faultline::daemon
