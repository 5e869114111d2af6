#pragma once
// RunObserver: what a RunSupervisor tells a watcher (the console, controller/console/) about runs
// and the fleet's halt as they happen, so a live view needs no change to the engine or to the
// supervisor's logic. Every method has an empty default; override what you watch.
//
// Threads: run callbacks come from the run's thread (OnSample from a probe's thread: concurrent
// calls for different probes of one run are possible); halt callbacks from the thread that
// halts or resumes. Implementations must be thread-safe and must not block (no I/O, no waiting):
// a run, a probe and a halt never wait for a watcher.

#include <memory>
#include <string>

#include "controller/engine/run_engine.h"
#include "controller/experiment/experiment.h"

namespace faultline::daemon {

struct HaltOutcome;

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // A run was registered and is about to start. `experiment` stays valid while the run lives.
  virtual void OnRunStarted(const std::string& run_id,
                            std::shared_ptr<const experiment::Experiment> experiment,
                            MonoTime started, int64_t started_unix_ms) {}
  // The engine's progress (RunOptions::on_progress); `event.fault` is set on apply/revert acks.
  virtual void OnProgress(const std::string& run_id, const engine::ProgressEvent& event) {}
  // A probe sample as it is taken (RunOptions::on_sample).
  virtual void OnSample(const std::string& run_id, const std::string& probe,
                        const engine::ProbeSample& sample) {}
  // The run is over (verdict decided, faults reverted); called before it is recorded.
  virtual void OnRunFinished(const engine::RunResult& result) {}
  // The halt latch was set (`done` null: before the fleet-wide revert is sent) and, for the same
  // halt, the revert fan-out finished (`done` set).
  virtual void OnHalt(const std::string& reason, const HaltOutcome* done) {}
  // The halt was lifted: runs may start again.
  virtual void OnResume() {}
};

}  // namespace faultline::daemon
