#include "controller/console/console_json.h"

#include <nlohmann/json.hpp>

#include "common/faultspec/fault_kinds.h"
#include "controller/engine/workload_selection.h"
#include "controller/experiment/parser.h"
#include "controller/report/report_model.h"
#include "controller/schedule/cron.h"

namespace faultline::console {

using nlohmann::json;

namespace {

json Opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

std::string RunRowJson(const store::RunRecord& run) {
  json row{
      {"run_id", run.id},
      {"experiment", run.experiment},
      {"verdict", run.verdict.empty()
                      ? json(run.state == store::RunState::kRunning ? "RUNNING" : "INTERRUPTED")
                      : json(run.verdict)},
      {"started_at", report::IsoTime(run.started_unix_ms)},
      {"ttd_s", nullptr},
      {"ttr_s", nullptr},
      {"recover_bracket", nullptr}};
  if (!run.report_json.empty()) {
    auto model = report::ParseReportJson(run.report_json, "run " + run.id);
    if (model.ok() && !model->objectives.empty()) {
      const auto& o = model->objectives.front();
      row["ttd_s"] = Opt(o.time_to_detect_s);
      row["ttr_s"] = Opt(o.time_to_recover_s);
      if (o.recover_bracket)
        row["recover_bracket"] = {o.recover_bracket->lo_s, o.recover_bracket->hi_s};
    }
  }
  return row.dump();
}

std::string FleetJson(const std::vector<daemon::AgentSnapshot>& agents,
                      const v1::ListFleetFaultsResponse& faults, int64_t now_unix_ms) {
  json list = json::array();
  for (const auto& a : agents) {
    json labels = json::object();
    for (const auto& [k, v] : a.info.labels()) labels[k] = v;
    json caps = json::array();
    for (const auto& c : a.info.capabilities()) caps.push_back(c);
    json active = json::array();
    for (const auto& f : faults.faults()) {
      if (f.agent_id() != a.info.agent_id()) continue;
      const v1::FaultStatus& s = f.fault();
      json evidence = json::object();
      for (const auto& [k, v] : s.evidence()) evidence[k] = v;
      active.push_back({{"fault_id", s.fault_id()},
                        {"kind", std::string(faultspec::FaultKindName(s.spec()))},
                        {"run_id", s.run_id()},
                        {"workload", s.has_workload() ? engine::DescribeWorkload(
                                                            {a.info.agent_id(), s.workload()})
                                                      : std::string()},
                        {"evidence", evidence}});
    }
    list.push_back(
        {{"id", a.info.agent_id()},
         {"address", a.peer},
         {"labels", labels},
         {"capabilities", caps},
         {"health", a.live ? "attached" : "lost"},
         {"last_seen_s", a.last_seen_unix_ms > 0
                             ? json(static_cast<double>(now_unix_ms - a.last_seen_unix_ms) / 1000.0)
                             : json(nullptr)},
         {"active_faults", active}});
  }
  return json{{"agents", list}}.dump();
}

std::string ScheduleJson(const store::Schedule& s, const std::vector<store::Firing>& firings,
                         int64_t now_unix_ms) {
  json next = nullptr;
  if (!s.paused) {
    auto cron = schedule::CronExpression::Parse(s.cron);
    auto tz = schedule::TimeZone::Load(s.tz);
    if (cron.ok() && tz.ok()) {
      if (auto at = cron->NextAfter(now_unix_ms, *tz)) next = report::IsoTime(*at);
    }
  }
  json missed = json::array();
  for (const auto& f : firings) {
    if (f.outcome.rfind("missed:", 0) == 0 || f.outcome.rfind("skipped:", 0) == 0 ||
        f.outcome.rfind("failed:", 0) == 0) {
      missed.push_back({{"at", report::IsoTime(f.due_unix_ms)}, {"reason", f.outcome}});
    }
  }
  // The experiment's own name (metadata.name); the schedule's when the text does not parse.
  auto parsed = experiment::ParseExperimentText(s.spec_yaml, "schedule " + s.name);
  std::string experiment = parsed.ok() ? parsed.experiment->name : s.name;
  return json{{"name", s.name},     {"experiment", experiment}, {"cron", s.cron},
              {"paused", s.paused}, {"next_firing", next},      {"missed", missed}}
      .dump();
}

std::string TrendJson(const report::Trend& trend, const std::string& objective) {
  json points = json::array();
  const report::TrendSeries* series = nullptr;
  for (const auto& s : trend.series) {
    if (s.objective == objective || (objective.empty() && !series)) series = &s;
  }
  if (series) {
    for (const auto& p : series->points) {
      json bracket = nullptr;
      if (p.recover) bracket = {p.recover->lo, p.recover->hi};
      points.push_back({{"run_id", p.run_id},
                        {"at", p.started_at},
                        {"ttr_s", Opt(p.time_to_recover_s)},
                        {"bracket", bracket},
                        {"verdict", p.verdict}});
    }
  }
  return json{{"experiment", trend.experiment},
              {"objective", series ? series->objective : std::string()},
              {"points", points}}
      .dump();
}

}  // namespace faultline::console
