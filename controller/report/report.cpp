#include "controller/report/report.h"

#include "controller/report/stored_report.h"

#include <spdlog/fmt/fmt.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace faultline::report {

using engine::RunResult;
using json = nlohmann::json;

namespace {

double Offset(const RunResult& r, MonoTime t) { return ToSeconds(t - r.started); }

json OptSeconds(const std::optional<Duration>& d) {
  return d ? json(ToSeconds(*d)) : json(nullptr);
}

json OptOffset(const RunResult& r, const std::optional<MonoTime>& t) {
  return t ? json(Offset(r, *t)) : json(nullptr);
}

std::string Fmt(const std::optional<Duration>& d) {
  return d ? fmt::format("{:.2f}s", ToSeconds(*d)) : std::string("—");
}

}  // namespace

std::string RenderJson(const RunResult& r) {
  json j;
  j["experiment"] = r.experiment;
  j["run_id"] = r.run_id;
  j["verdict"] = engine::VerdictName(r.verdict);
  j["exit_code"] = engine::ExitCodeFor(r.verdict);
  j["reason"] = r.reason;
  j["started_at"] = IsoTime(r.started_unix_ms);
  j["ended_at"] = IsoTime(r.ended_unix_ms);
  j["duration_s"] = ToSeconds(r.ended - r.started);
  // Instants are seconds from the run's start on the monotonic clock; the monotonic origin is
  // given too, so they compare with CLOCK_MONOTONIC stamps logged by services on the same machine.
  j["timeline"] = {
      {"monotonic_origin_ns", r.started.count()},
      {"t_inject_first_s", OptOffset(r, r.t_inject_first)},
      {"t_inject_s", OptOffset(r, r.t_inject)},
      {"t_revert_start_s", OptOffset(r, r.t_revert_start)},
      {"t_revert_s", OptOffset(r, r.t_revert)},
      {"t_end_s", Offset(r, r.ended)},
  };
  j["targets"] = r.targets;
  j["objectives"] = json::array();
  for (const auto& o : r.objectives) {
    const auto& f = o.figures;
    j["objectives"].push_back({
        {"name", o.name},
        {"probe", o.probe},
        {"after", o.phase == experiment::Objective::Phase::kInject ? "inject" : "revert"},
        {"verdict", engine::ObjectiveVerdictName(o.verdict)},
        {"target_s", ToSeconds(o.target)},
        {"stable_for_s", ToSeconds(o.stable_for)},
        {"time_to_detect_s", OptSeconds(f.time_to_detect)},
        {"time_to_recover_s", OptSeconds(f.time_to_recover)},
        {"uncertainty_s", ToSeconds(f.uncertainty)},
        {"availability", f.availability},
        {"downtime_s", ToSeconds(f.downtime)},
        {"no_impact", f.no_impact},
        {"samples", f.samples},
        {"failures", f.failures},
        {"note", o.note},
    });
  }
  std::map<std::string, json> faults;
  std::vector<std::string> order;
  for (const auto& fa : r.faults) {
    if (!faults.count(fa.fault_name)) {
      order.push_back(fa.fault_name);
      faults[fa.fault_name] = {{"name", fa.fault_name}, {"fault_id", fa.fault_id},
                               {"kind", fa.kind}, {"target", fa.target},
                               {"agents", json::array()}};
    }
    faults[fa.fault_name]["agents"].push_back({
        {"agent", fa.agent},
        {"applied_at", OptOffset(r, fa.applied_at)},
        {"reverted_at", OptOffset(r, fa.reverted_at)},
        {"applied_at_wall", IsoTime(fa.applied_at_unix_ms)},
        {"reverted_at_wall", IsoTime(fa.reverted_at_unix_ms)},
        {"revert_reason", fa.revert_reason},
        {"evidence", fa.evidence},
        {"state_unknown", fa.state_unknown},
        {"error", fa.error.empty() ? json(nullptr) : json(fa.error)},
    });
  }
  j["faults"] = json::array();
  for (const auto& name : order) j["faults"].push_back(faults[name]);
  j["probes"] = json::array();
  for (const auto& p : r.probes) {
    json samples = json::array();
    for (const auto& s : p.samples) {
      samples.push_back({{"t_s", Offset(r, s.sample.at)},
                         {"ok", s.sample.ok},
                         {"latency_ms", ToSeconds(s.sample.latency) * 1000},
                         {"detail", s.detail}});
    }
    j["probes"].push_back({
        {"name", p.name},
        {"interval_s", ToSeconds(p.interval)},
        {"latency_ms",
         {{"p50", ToSeconds(p.latency.p50) * 1000},
          {"p90", ToSeconds(p.latency.p90) * 1000},
          {"p99", ToSeconds(p.latency.p99) * 1000},
          {"max", ToSeconds(p.latency.max) * 1000}}},
        {"samples", samples},
    });
  }
  j["warnings"] = r.warnings;
  return j.dump(2) + "\n";
}

std::string RenderText(const RunResult& r) {
  std::string out;
  out += fmt::format("\nExperiment {}  run {}\n", r.experiment, r.run_id);
  out += fmt::format("Verdict: {}  ({})\n", engine::VerdictName(r.verdict), r.reason);
  if (r.t_inject) {
    out += fmt::format("Fault in effect at +{:.2f}s (first ack +{:.2f}s), reverted at +{:.2f}s\n",
                       Offset(r, *r.t_inject), Offset(r, *r.t_inject_first),
                       r.t_revert ? Offset(r, *r.t_revert) : 0.0);
  }
  if (!r.objectives.empty()) {
    out += "\nObjectives\n";
    out += fmt::format("  {:<24} {:<7} {:>9} {:>10} {:>11} {:>8} {:>8}\n", "name", "verdict",
                       "target", "detect", "recover", "±", "avail");
    for (const auto& o : r.objectives) {
      const auto& f = o.figures;
      out += fmt::format("  {:<24} {:<7} {:>9} {:>10} {:>11} {:>8} {:>7.1f}%\n", o.name,
                         engine::ObjectiveVerdictName(o.verdict), FormatDuration(o.target),
                         Fmt(f.time_to_detect), Fmt(f.time_to_recover),
                         fmt::format("{:.2f}s", ToSeconds(f.uncertainty)), f.availability * 100);
      out += fmt::format("      after {}: {}\n",
                         o.phase == experiment::Objective::Phase::kInject ? "inject" : "revert",
                         o.note);
    }
  }
  if (!r.faults.empty()) {
    out += "\nFaults\n";
    for (const auto& fa : r.faults) {
      std::string ev;
      for (const auto& [k, v] : fa.evidence) ev += fmt::format("{}{}={}", ev.empty() ? "" : ", ", k, v);
      out += fmt::format("  {} on {} ({}, id {}): applied {}, reverted {}{}\n", fa.fault_name,
                         fa.agent, fa.kind, fa.fault_id,
                         fa.applied_at ? fmt::format("+{:.2f}s", Offset(r, *fa.applied_at)) : "—",
                         fa.reverted_at ? fmt::format("+{:.2f}s", Offset(r, *fa.reverted_at)) : "—",
                         fa.revert_reason.empty() ? "" : " (" + fa.revert_reason + ")");
      out += "      evidence: " + (ev.empty() ? std::string("none reported") : ev) + "\n";
      if (!fa.error.empty()) out += "      error: " + fa.error + "\n";
    }
  }
  if (!r.probes.empty()) {
    out += "\nProbes\n";
    for (const auto& p : r.probes) {
      int ok = 0;
      for (const auto& s : p.samples) ok += s.sample.ok;
      out += fmt::format("  {:<24} {} samples, {} ok; latency p50 {:.1f}ms p90 {:.1f}ms p99 "
                         "{:.1f}ms\n",
                         p.name, p.samples.size(), ok, ToSeconds(p.latency.p50) * 1000,
                         ToSeconds(p.latency.p90) * 1000, ToSeconds(p.latency.p99) * 1000);
    }
  }
  for (const auto& w : r.warnings) out += "warning: " + w + "\n";
  return out;
}

Status WriteJsonReport(const RunResult& run, const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Internal("cannot write report " + tmp);
    out << RenderJson(run);
    if (!out.good()) return Internal("cannot write report " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot move report into place at " + path);
  }
  return Status::Ok();
}

}  // namespace faultline::report
