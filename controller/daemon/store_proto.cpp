#include "controller/daemon/store_proto.h"

namespace faultline::daemon {

v1::Schedule ScheduleToProto(const store::Schedule& s) {
  v1::Schedule p;
  p.set_name(s.name);
  p.set_experiment_yaml(s.spec_yaml);
  p.set_cron(s.cron);
  p.set_tz(s.tz);
  p.set_concurrency(store::ConcurrencyPolicyName(s.concurrency));
  p.set_window(s.window);
  for (const auto& d : s.blackout_dates) p.add_blackout_dates(d);
  p.set_paused(s.paused);
  p.set_created_unix_ms(s.created_unix_ms);
  return p;
}

Result<store::Schedule> ScheduleFromProto(const v1::Schedule& p) {
  store::Schedule s;
  s.name = p.name();
  s.spec_yaml = p.experiment_yaml();
  s.cron = p.cron();
  s.tz = p.tz().empty() ? "UTC" : p.tz();
  if (!p.concurrency().empty()) {
    auto c = store::ParseConcurrencyPolicy(p.concurrency());
    if (!c.ok()) {
      return InvalidArgument("concurrency: '" + p.concurrency() + "' is neither forbid nor allow");
    }
    s.concurrency = *c;
  }
  s.window = p.window();
  s.blackout_dates.assign(p.blackout_dates().begin(), p.blackout_dates().end());
  s.paused = p.paused();
  s.created_unix_ms = p.created_unix_ms();
  return s;
}

v1::ScheduleFiring FiringToProto(const store::Firing& f) {
  v1::ScheduleFiring p;
  p.set_schedule(f.schedule);
  p.set_due_unix_ms(f.due_unix_ms);
  p.set_recorded_unix_ms(f.recorded_unix_ms);
  p.set_outcome(f.outcome);
  p.set_run_id(f.run_id);
  p.set_controller(f.holder);
  return p;
}

store::Firing FiringFromProto(const v1::ScheduleFiring& p) {
  return store::Firing{p.schedule(), p.due_unix_ms(), p.recorded_unix_ms(),
                       p.outcome(),  p.run_id(),      p.controller()};
}

v1::RunAnnotation AnnotationToProto(const store::Annotation& a) {
  v1::RunAnnotation p;
  p.set_id(a.id);
  p.set_run_id(a.run_id);
  p.set_at_unix_ms(a.at_unix_ms);
  p.set_author(a.author);
  p.set_text(a.text);
  return p;
}

store::Annotation AnnotationFromProto(const v1::RunAnnotation& p) {
  return store::Annotation{p.id(), p.run_id(), p.at_unix_ms(), p.author(), p.text()};
}

v1::RunSummary RunToProto(const store::RunRecord& r) {
  v1::RunSummary p;
  p.set_run_id(r.id);
  p.set_experiment(r.experiment);
  p.set_verdict(r.state == store::RunState::kFinished      ? r.verdict
                : r.state == store::RunState::kInterrupted ? "INTERRUPTED"
                                                           : "RUNNING");
  p.set_started_unix_ms(r.started_unix_ms);
  p.set_ended_unix_ms(r.ended_unix_ms);
  p.set_report_json(r.report_json);
  p.set_state(store::RunStateName(r.state));
  p.set_source(r.source);
  p.set_owner(r.owner);
  p.set_spec_yaml(r.spec_yaml);
  return p;
}

store::StoredRun StoredRunFromProto(const v1::RunSummary& p) {
  store::StoredRun out;
  store::RunRecord& r = out.run;
  r.id = p.run_id();
  r.experiment = p.experiment();
  r.spec_yaml = p.spec_yaml();
  auto state = store::ParseRunState(p.state());
  // A controller without a store knows only its own runs: RUNNING until they finish.
  r.state = state.ok()                 ? *state
            : p.verdict() == "RUNNING" ? store::RunState::kRunning
                                       : store::RunState::kFinished;
  if (r.state == store::RunState::kFinished) r.verdict = p.verdict();
  r.started_unix_ms = p.started_unix_ms();
  r.ended_unix_ms = p.ended_unix_ms();
  r.report_json = p.report_json();
  r.source = p.source();
  r.owner = p.owner();
  for (const auto& a : p.annotations()) out.annotations.push_back(AnnotationFromProto(a));
  return out;
}

}  // namespace faultline::daemon
