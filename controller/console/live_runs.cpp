#include "controller/console/live_runs.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "controller/daemon/run_supervisor.h"
#include "controller/engine/recovery_meter.h"
#include "controller/report/timeline_svg.h"

namespace faultline::console {

using experiment::Objective;
using nlohmann::json;

namespace {

// Finished runs kept for their last picture (a viewer that arrives just after the end).
constexpr size_t kRecentRuns = 16;

// The console's phase names for the engine's.
std::string PhaseOf(const std::string& engine_phase) {
  if (engine_phase == "targets") return "preflight";
  if (engine_phase == "steady") return "baseline";
  if (engine_phase == "inject" || engine_phase == "observe") return "fault";
  if (engine_phase == "revert" || engine_phase == "after") return "recovery";
  if (engine_phase == "verdict") return "done";
  return "preflight";
}

json Seconds(std::optional<double> s) { return s ? json(*s) : json(nullptr); }

}  // namespace

std::string HaltJson(const HaltState& h) {
  json errors = json::array();
  for (const auto& [agent, error] : h.errors)
    errors.push_back({{"agent", agent}, {"error", error}});
  return json{{"halted", h.halted},
              {"by", h.by},
              {"reason", h.reason},
              {"at", h.at_unix_ms > 0 ? json(report::IsoTime(h.at_unix_ms)) : json(nullptr)},
              {"reverted", h.reverted},
              {"errors", errors}}
      .dump();
}

struct LiveRuns::Run {
  std::string run_id;
  std::shared_ptr<const experiment::Experiment> experiment;
  MonoTime started{};
  int64_t started_unix_ms = 0;
  std::string phase = "preflight";
  std::map<std::string, probes::ProbeRecord> probes;
  std::map<std::pair<std::string, std::string>, engine::FaultOnAgent> faults;  // (id, agent)
  std::optional<MonoTime> revert_started;
  std::vector<report::Annotation> annotations;
  // Set when the run is over: the report's own model, which replaces the live one.
  std::optional<report::ReportModel> final_model;
  int64_t finished_seq = 0;
  MonoTime ended{};
};

LiveRuns::LiveRuns(PublishFn publish, Clock& clock) : publish_(std::move(publish)), clock_(clock) {}

void LiveRuns::OnStartHalted(bool halted) {
  std::lock_guard lock(mu_);
  if (!halted || halt_.halted) return;
  halt_.halted = true;
  halt_.reason = "halted before the console started";
}

void LiveRuns::OnRunStarted(const std::string& run_id,
                            std::shared_ptr<const experiment::Experiment> experiment,
                            MonoTime started, int64_t started_unix_ms) {
  auto run = std::make_shared<Run>();
  run->run_id = run_id;
  run->started = started;
  run->started_unix_ms = started_unix_ms;
  for (const auto& p : experiment->probes) {
    probes::ProbeRecord rec;
    rec.name = p.name;
    rec.interval = p.interval;
    run->probes[p.name] = rec;
  }
  run->experiment = std::move(experiment);
  std::lock_guard lock(mu_);
  runs_[run_id] = std::move(run);
}

void LiveRuns::OnProgress(const std::string& run_id, const engine::ProgressEvent& event) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end() || it->second->final_model) return;
  Run& run = *it->second;
  run.phase = PhaseOf(event.phase);
  if (event.phase == "revert" && !run.revert_started) run.revert_started = event.at;
  if (event.fault) run.faults[{event.fault->fault_id, event.fault->agent}] = *event.fault;
}

void LiveRuns::OnSample(const std::string& run_id, const std::string& probe,
                        const engine::ProbeSample& sample) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end() || it->second->final_model) return;
  auto& samples = it->second->probes[probe].samples;
  // Samples arrive in answer order; the model wants send order.
  auto pos =
      std::upper_bound(samples.begin(), samples.end(), sample.sample.at,
                       [](MonoTime t, const engine::ProbeSample& s) { return t < s.sample.at; });
  samples.insert(pos, sample);
}

void LiveRuns::OnRunFinished(const engine::RunResult& result) {
  std::string state, svg;
  {
    std::lock_guard lock(mu_);
    auto it = runs_.find(result.run_id);
    if (it == runs_.end()) return;
    Run& run = *it->second;
    run.phase = "done";
    run.final_model = report::FromRun(result);
    for (const auto& a : run.annotations) run.final_model->annotations.push_back(a);
    static int64_t seq = 0;
    run.finished_seq = ++seq;
    run.ended = result.ended;
    state = RunStateLocked(run, *run.final_model, result.ended);
    svg = report::RenderTimelineSvg(*run.final_model);
    // Forget the oldest finished runs beyond kRecentRuns.
    std::vector<std::pair<int64_t, std::string>> finished;
    for (const auto& [id, r] : runs_) {
      if (r->final_model) finished.emplace_back(r->finished_seq, id);
    }
    std::sort(finished.begin(), finished.end());
    for (size_t i = 0; i + kRecentRuns < finished.size(); ++i) runs_.erase(finished[i].second);
  }
  publish_("run", state);
  publish_("timeline", json{{"run_id", result.run_id}, {"svg", svg}}.dump());
  publish_(
      "run_end",
      json{{"run_id", result.run_id}, {"verdict", engine::VerdictName(result.verdict)}}.dump());
}

void LiveRuns::NoteHaltBy(const std::string& identity) {
  std::lock_guard lock(mu_);
  halt_by_ = identity;
}

void LiveRuns::OnHalt(const std::string& reason, const daemon::HaltOutcome* done) {
  std::string data;
  {
    std::lock_guard lock(mu_);
    if (!done) {
      halt_ = HaltState{};
      halt_.halted = true;
      halt_.by = halt_by_.empty() ? std::string("faultline halt") : halt_by_;
      halt_by_.clear();
      halt_.reason = reason;
      halt_.at_unix_ms = clock_.WallUnixMs();
    } else {
      halt_.reverted = done->faults_reverted;
      halt_.errors = done->failed;
    }
    data = HaltJson(halt_);
  }
  publish_("halt", data);
}

void LiveRuns::OnResume() {
  std::string data;
  {
    std::lock_guard lock(mu_);
    halt_.halted = false;
    data = HaltJson(halt_);
  }
  publish_("halt", data);
}

HaltState LiveRuns::Halt() const {
  std::lock_guard lock(mu_);
  return halt_;
}

report::ReportModel LiveRuns::ModelLocked(const Run& run, MonoTime now) const {
  if (run.final_model) return *run.final_model;
  engine::RunResult r;
  r.experiment = run.experiment->name;
  r.run_id = run.run_id;
  r.verdict = engine::Verdict::kError;
  r.started = run.started;
  r.started_unix_ms = run.started_unix_ms;
  r.ended = now;
  bool all_applied = !run.faults.empty(), all_reverted = !run.faults.empty();
  for (const auto& [key, fa] : run.faults) {
    r.faults.push_back(fa);
    auto& agents = r.targets[fa.target];
    if (std::find(agents.begin(), agents.end(), fa.agent) == agents.end())
      agents.push_back(fa.agent);
    if (fa.applied_at) {
      if (!r.t_inject_first || *fa.applied_at < *r.t_inject_first) r.t_inject_first = fa.applied_at;
      if (!r.t_inject || *fa.applied_at > *r.t_inject) r.t_inject = fa.applied_at;
    } else {
      all_applied = false;
    }
    if (fa.reverted_at) {
      if (!r.t_revert || *fa.reverted_at > *r.t_revert) r.t_revert = fa.reverted_at;
    } else {
      all_reverted = false;
    }
  }
  // The fault is in effect once every target acknowledged (the engine applies all at once).
  if (!all_applied || run.phase == "preflight" || run.phase == "baseline") r.t_inject.reset();
  if (!all_reverted) r.t_revert.reset();
  r.t_revert_start = run.revert_started;
  for (const auto& [name, rec] : run.probes) r.probes.push_back(rec);
  // Objectives measured so far, with the verdict's meter (a preview; the report decides).
  for (const auto& o : run.experiment->objectives) {
    engine::ObjectiveResult res;
    res.name = o.name;
    res.probe = o.probe;
    res.phase = o.after;
    res.target = o.recover_within;
    res.stable_for = o.stable_for;
    std::optional<MonoTime> start = o.after == Objective::Phase::kInject ? r.t_inject : r.t_revert;
    auto probe = run.probes.find(o.probe);
    if (start && probe != run.probes.end()) {
      MonoTime end = o.after == Objective::Phase::kInject && r.t_revert_start
                         ? std::max(*start, *r.t_revert_start)
                         : now;
      std::vector<engine::Sample> samples;
      for (const auto& s : probe->second.samples) samples.push_back(s.sample);
      res.figures =
          engine::MeasureRecovery(samples, {*start, end, o.stable_for, probe->second.interval});
    }
    r.objectives.push_back(res);
  }
  report::ReportModel model = report::FromRun(r);
  model.verdict = "RUNNING";
  model.reason.clear();
  for (const auto& a : run.annotations) model.annotations.push_back(a);
  return model;
}

std::string LiveRuns::RunStateLocked(const Run& run, const report::ReportModel& m,
                                     MonoTime now) const {
  const double elapsed = run.final_model ? m.duration_s : ToSeconds(now - run.started);
  json objectives = json::array();
  json detect = nullptr, recover = nullptr;
  for (const auto& o : m.objectives) {
    std::optional<double> window = o.after == "revert" ? m.t_revert_s : m.t_inject_s;
    double in_window = 0;
    if (window) {
      std::optional<double> end = o.after == "inject" ? m.t_revert_start_s : std::nullopt;
      in_window = std::max(0.0, end.value_or(elapsed) - *window);
    }
    std::string state = "pending";
    if (o.time_to_recover_s && !o.no_impact) {
      state = *o.time_to_recover_s <= o.target_s ? "met" : "missed";
    } else if (o.no_impact && run.final_model) {
      state = o.verdict == "PASS" ? "met" : "missed";
    } else if (in_window > o.target_s || (run.final_model && o.verdict != "PASS")) {
      state = "missed";
    }
    if (run.final_model && o.verdict == "PASS") state = "met";
    objectives.push_back({{"name", o.name},
                          {"kind", "recover_within"},
                          {"limit_s", o.target_s},
                          {"elapsed_s", in_window},
                          {"state", state}});
    // The first objective measured from inject carries the run's detect and recover markers,
    // as seconds from the run's start (the timeline's x axis).
    if (window && detect.is_null() && o.time_to_detect_s) {
      json b = nullptr;
      if (o.detect_bracket)
        b = {*window + o.detect_bracket->lo_s, *window + o.detect_bracket->hi_s};
      detect = {{"at_s", *window + *o.time_to_detect_s}, {"bracket", b}};
    }
    if (window && recover.is_null() && o.time_to_recover_s && !o.no_impact) {
      json b = nullptr;
      if (o.recover_bracket) {
        b = {*window + o.recover_bracket->lo_s, *window + o.recover_bracket->hi_s};
      }
      recover = {{"at_s", *window + *o.time_to_recover_s}, {"bracket", b}};
    }
  }
  json faults = json::array();
  for (const auto& f : m.faults) {
    for (const auto& a : f.agents) {
      faults.push_back({{"target", f.target},
                        {"host", a.agent},
                        {"workload", a.workload},
                        {"start_s", Seconds(a.applied_at_s)},
                        {"end_s", Seconds(a.reverted_at_s)}});
    }
  }
  size_t samples = 0;
  for (const auto& p : m.probes) samples += p.samples.size();
  return json{{"run_id", run.run_id},
              {"experiment", m.experiment},
              {"phase", run.final_model ? std::string("done") : run.phase},
              {"started_at", report::IsoTime(run.started_unix_ms)},
              {"elapsed_s", elapsed},
              {"objectives", objectives},
              {"detect", detect},
              {"recover", recover},
              {"faults", faults},
              {"samples", samples},
              {"verdict", run.final_model ? json(m.verdict) : json(nullptr)}}
      .dump();
}

size_t LiveRuns::Tick() {
  std::vector<std::pair<std::string, std::string>> events;
  size_t active = 0;
  {
    std::lock_guard lock(mu_);
    const MonoTime now = clock_.Now();
    for (const auto& [id, run] : runs_) {
      if (run->final_model) continue;
      ++active;
      report::ReportModel model = ModelLocked(*run, now);
      events.emplace_back("run", RunStateLocked(*run, model, now));
      events.emplace_back("timeline",
                          json{{"run_id", id}, {"svg", report::RenderTimelineSvg(model)}}.dump());
    }
  }
  for (const auto& [name, data] : events) publish_(name, data);
  return active;
}

std::string LiveRuns::ActiveJson() const {
  std::lock_guard lock(mu_);
  const MonoTime now = clock_.Now();
  std::string out = "[";
  for (const auto& [id, run] : runs_) {
    if (run->final_model) continue;
    if (out.size() > 1) out += ",";
    out += RunStateLocked(*run, ModelLocked(*run, now), now);
  }
  return out + "]";
}

std::string LiveRuns::RecentJson() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<int64_t, const Run*>> finished;
  for (const auto& [id, run] : runs_) {
    if (run->final_model) finished.emplace_back(run->finished_seq, run.get());
  }
  std::sort(finished.begin(), finished.end());
  std::string out = "[";
  for (const auto& [seq, run] : finished) {
    if (out.size() > 1) out += ",";
    out += RunStateLocked(*run, *run->final_model, run->ended);
  }
  return out + "]";
}

std::optional<std::string> LiveRuns::TimelineSvg(const std::string& run_id) const {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return std::nullopt;
  return report::RenderTimelineSvg(ModelLocked(*it->second, clock_.Now()));
}

void LiveRuns::AddAnnotation(const std::string& run_id, const std::string& author,
                             const std::string& text, int64_t at_unix_ms) {
  std::optional<double> at_s;
  {
    std::lock_guard lock(mu_);
    auto it = runs_.find(run_id);
    if (it != runs_.end()) {
      Run& run = *it->second;
      at_s = static_cast<double>(at_unix_ms - run.started_unix_ms) / 1000.0;
      report::Annotation note{at_s, report::IsoTime(at_unix_ms), author, text};
      run.annotations.push_back(note);
      if (run.final_model) run.final_model->annotations.push_back(note);
    }
  }
  publish_("annotation", json{{"run_id", run_id},
                              {"at_s", at_s ? json(*at_s) : json(nullptr)},
                              {"author", author},
                              {"text", text}}
                             .dump());
}

}  // namespace faultline::console
