#pragma once
// OpenLoopSampler: one probe's open-loop schedule, shared by the controller's ProbeSet and the
// agent's Probe stream.
//
// Slot k is at start + k × interval. At every slot a sample is taken whether or not earlier
// samples have answered, so a failing probe that takes its whole timeout does not push the next
// sample out (the measurement's resolution stays the interval, not the latency of a failure). At
// most `max_in_flight` samples are in flight; a slot that finds the bound reached (or that the
// scheduler reached more than an interval late: the machine stalled) is not sent and is reported
// through on_skip, never silently dropped. Samples run on a small pool of worker threads, created
// as needed and never more than the bound. Every sample records its send and answer instants
// with the given Clock.
//
// Threading: Start/Stop/Cancel from the owner's thread (Cancel from any thread). The callbacks
// run on the sampler's threads without its lock held; on_answer calls may be concurrent and come
// in answer order, not send order. The destructor stops the sampler.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/probes/probe_runner.h"

namespace faultline::probes {

// The bound on a probe's samples in flight: enough for every slot to be sent when each sample
// takes its whole timeout, ceil(timeout / interval) + 1, at least 4 and at most 64. Pure.
int MaxInFlight(Duration interval, Duration timeout);

// One answered sample, on the sampler's clock.
struct TimedOutcome {
  MonoTime sent{};
  MonoTime answered{};
  ProbeOutcome outcome;
};

class OpenLoopSampler {
 public:
  using Take = std::function<ProbeOutcome()>;
  using OnAnswer = std::function<void(const TimedOutcome&)>;
  using OnSkip = std::function<void(MonoTime slot)>;

  // `interval` (at least 1ms is used), `max_in_flight` >= 1 (normally MaxInFlight). `take` runs
  // one sample (blocking, bounded by the probe's timeout). `clock` must outlive the sampler.
  // on_answer/on_skip may be empty.
  OpenLoopSampler(Duration interval, int max_in_flight, Clock& clock, Take take, OnAnswer on_answer,
                  OnSkip on_skip);
  ~OpenLoopSampler();
  OpenLoopSampler(const OpenLoopSampler&) = delete;
  OpenLoopSampler& operator=(const OpenLoopSampler&) = delete;

  // Starts the schedule (first slot now). Call once.
  void Start();
  // Sends nothing more from now on; returns at once (samples in flight still answer and are
  // reported). Idempotent; any thread.
  void Cancel();
  // Cancel, then waits for the samples in flight to answer (each bounded by the probe's timeout)
  // and reports them; nothing is reported afterwards. Idempotent. Not from a callback.
  void Stop();

 private:
  void Schedule();
  void Work();

  const Duration interval_;
  const int max_in_flight_;
  Clock& clock_;
  Take take_;
  OnAnswer on_answer_;
  OnSkip on_skip_;
  std::mutex mu_;
  std::condition_variable cv_;        // scheduler: stop
  std::condition_variable work_cv_;   // workers: queue or stop
  bool stop_ = false;                 // guarded by mu_
  int in_flight_ = 0;                 // queued or running; guarded by mu_
  int idle_ = 0;                      // workers waiting for work; guarded by mu_
  std::deque<MonoTime> queue_;        // slots to send; guarded by mu_
  std::vector<std::thread> workers_;  // guarded by mu_ (added by the scheduler)
  std::thread scheduler_;
};

}  // namespace faultline::probes
