#pragma once
// ScheduleLoop: the controller's scheduling thread. Every tick it follows the store's halt
// (ControllerService::SyncHaltWithStore), then runs one schedule::Scheduler pass: presence lease,
// leader lease, runs of vanished controllers marked interrupted, due times decided. A due time
// that starts is run by ControllerService::StartRun (source "schedule:<name>", owner = this
// controller); while halted it is recorded skipped:halted.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "controller/daemon/controller_service.h"
#include "controller/schedule/scheduler.h"

namespace faultline::daemon {

struct ScheduleLoopOptions {
  // Between two passes; well within scheduler.lease_ttl (ValidateScheduleLoopOptions).
  std::chrono::milliseconds tick{5'000};
  // holder must be the service's controller_id (runs are owned by it); `halted` is set by the
  // loop from the service.
  schedule::SchedulerOptions scheduler;
};

// INVALID_ARGUMENT when the tick is not positive or longer than a third of the lease (a
// controller must renew its leases at least twice before they lapse), or the start deadline is
// shorter than two ticks (due times would be missed by a healthy controller).
Status ValidateScheduleLoopOptions(const ScheduleLoopOptions& options);

class ScheduleLoop {
 public:
  // `service`, `store` and `clock` must outlive the loop. Starts the thread; the first pass is
  // immediate.
  ScheduleLoop(ControllerService& service, store::RunStore& store, Clock& clock,
               ScheduleLoopOptions options);
  // Stop().
  ~ScheduleLoop();

  // Stops the thread and gives the scheduler lease up, so another controller takes over at its
  // next tick. Idempotent.
  void Stop();

 private:
  void Loop();

  ControllerService& service_;
  ScheduleLoopOptions options_;
  std::unique_ptr<schedule::Scheduler> scheduler_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace faultline::daemon
