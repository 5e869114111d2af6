#pragma once
// LiveRuns: the console's picture of what the controller is doing now, fed by the supervisor
// (daemon::RunObserver): each active run's live report model (probe samples, fault windows per
// agent, objectives measured so far with the verdict's RecoveryMeter) and the fleet's halt. It
// turns them into the JSON of docs/console-api.md (RunState, Halt) and the run's timeline SVG
// (report/timeline_svg.h, the HTML report's renderer over the same ReportModel), and publishes
// `run`, `timeline`, `run_end` and `halt` events through a callback.
//
// Threads: observer callbacks come from run, probe and halt threads and only record (no I/O, no
// rendering, nothing that blocks); rendering happens in Tick() (the console's ticker) and in
// the request threads that ask for a snapshot. Everything is thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "controller/daemon/run_observer.h"
#include "controller/report/report_model.h"

namespace faultline::console {

// Publishes one event (name, JSON data) to every viewer. Must not block.
using PublishFn = std::function<void(const std::string& event, const std::string& json)>;

// The fleet's halt as the console shows it (docs/console-api.md `Halt`).
struct HaltState {
  bool halted = false;
  std::string by;
  std::string reason;
  int64_t at_unix_ms = 0;
  uint32_t reverted = 0;
  std::vector<std::pair<std::string, std::string>> errors;  // agent, error
};
std::string HaltJson(const HaltState& halt);

class LiveRuns final : public daemon::RunObserver {
 public:
  // `publish` receives every event. `clock` must outlive this.
  explicit LiveRuns(PublishFn publish, Clock& clock = SystemClock::Instance());
  // The supervisor's halt when the console starts (a halt restored from the store).
  void OnStartHalted(bool halted);

  // daemon::RunObserver.
  void OnRunStarted(const std::string& run_id,
                    std::shared_ptr<const experiment::Experiment> experiment, MonoTime started,
                    int64_t started_unix_ms) override;
  void OnProgress(const std::string& run_id, const engine::ProgressEvent& event) override;
  void OnSample(const std::string& run_id, const std::string& probe,
                const engine::ProbeSample& sample) override;
  void OnRunFinished(const engine::RunResult& result) override;
  void OnHalt(const std::string& reason, const daemon::HaltOutcome* done) override;
  void OnResume() override;

  // Who the next halt is by (the console's caller); a halt from the gRPC API is "faultline halt".
  void NoteHaltBy(const std::string& identity);
  HaltState Halt() const;

  // Publishes `run` and `timeline` for every active run (call at least once a second). Returns
  // how many runs are active.
  size_t Tick();
  // The RunState JSON of every active run, as an array.
  std::string ActiveJson() const;
  // The final RunState JSON of the runs that finished here recently (the last few), oldest
  // first: a page whose event stream broke learns from them how the runs it showed ended.
  std::string RecentJson() const;
  // A run's live timeline SVG (active, or finished in this process recently); nullopt when
  // unknown here.
  std::optional<std::string> TimelineSvg(const std::string& run_id) const;
  // A note for every viewer of `run_id`: publishes `annotation` and draws it on the live
  // timeline when the run is active here. `at_unix_ms`: when it was written.
  void AddAnnotation(const std::string& run_id, const std::string& author, const std::string& text,
                     int64_t at_unix_ms);

 private:
  struct Run;
  // Precondition: mu_ held.
  report::ReportModel ModelLocked(const Run& run, MonoTime now) const;
  std::string RunStateLocked(const Run& run, const report::ReportModel& model, MonoTime now) const;

  PublishFn publish_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_;  // guarded by mu_; active and recent
  HaltState halt_;                                    // guarded by mu_
  std::string halt_by_;                               // guarded by mu_
};

}  // namespace faultline::console
