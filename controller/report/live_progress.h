#pragma once
// LiveProgress: what `faultline run` shows while an experiment runs. Fed the engine's progress
// events and probe samples (RunOptions::on_progress / on_sample).
//  - On a terminal it keeps a small status block at the bottom of the screen, redrawn in place
//    with ANSI escapes: the phase and elapsed time, each objective's measurement so far against
//    its target, and each probe's last result with its ok/failed counts. Event lines scroll above.
//  - Elsewhere (a CI log, a pipe) it prints one plain line per event and never an escape code.
// The status of an objective here is a preview computed with the same RecoveryMeter as the
// verdict; the report printed at the end is the authority.

#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "controller/engine/run_engine.h"
#include "controller/experiment/experiment.h"

namespace faultline::report {

class LiveProgress {
 public:
  // `origin`: the instant shown as +0 (the run's start). `out` is written from the calling
  // threads under an internal lock; `tty` selects the redrawn block over plain lines.
  LiveProgress(const experiment::Experiment& experiment, MonoTime origin, std::FILE* out, bool tty);

  // Thread-safe. Prints the event (and, on a terminal, redraws the block under it).
  void OnEvent(const engine::ProgressEvent& event);
  // Thread-safe. Records the sample; nothing is printed until the next Redraw or event.
  void OnSample(const std::string& probe, const engine::ProbeSample& sample);
  // Thread-safe. On a terminal, redraws the block for `now` (call it a few times a second);
  // elsewhere does nothing.
  void Redraw(MonoTime now);
  // Thread-safe, idempotent. Erases the block so the final report starts on a clean screen.
  void Finish();

  // The status block for `now` as plain lines (no escape codes). For tests and Redraw.
  std::vector<std::string> StatusLines(MonoTime now) const;

 private:
  struct ProbeState {
    Duration interval{};
    std::vector<engine::Sample> samples;
    std::string last_detail;  // of the sample answered last
    engine::Sample last;      // the sample answered last
    int ok = 0, failed = 0;
  };
  std::vector<std::string> StatusLinesLocked(MonoTime now) const;
  void EraseLocked();
  void DrawLocked(MonoTime now);

  const experiment::Experiment& exp_;
  const MonoTime origin_;
  std::FILE* const out_;
  const bool tty_;
  mutable std::mutex mu_;
  std::string phase_ = "start";
  std::optional<MonoTime> inject_at_, revert_at_;
  std::map<std::string, ProbeState> probes_;
  int drawn_lines_ = 0;
  bool finished_ = false;
};

}  // namespace faultline::report
