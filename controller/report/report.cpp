#include "controller/report/report.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "controller/report/markup.h"

namespace faultline::report {

using json = nlohmann::json;

namespace {

json Opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json OptBracket(const std::optional<TimeBracket>& b) {
  return b ? json::array({b->lo_s, b->hi_s}) : json(nullptr);
}

// "[1.20s, 1.45s]", or "—" when there is no bracket.
std::string FmtBracket(const std::optional<TimeBracket>& b) {
  return b ? fmt::format("[{:.2f}s, {:.2f}s]", b->lo_s, b->hi_s) : std::string("—");
}

std::string Fmt(const std::optional<double>& s) {
  return s ? fmt::format("{:.2f}s", *s) : std::string("—");
}

// Objective targets are whole durations ("15m"); show them as written in the experiment.
std::string Human(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 7 * 86400.0) {
    return fmt::format("{:.2f}s", seconds);
  }
  return FormatDuration(Duration(std::llround(seconds * 1e9)));
}

json AvailabilityJson(const std::optional<AvailabilityRow>& a) {
  if (!a) return nullptr;
  return {{"min", a->min},
          {"measured", a->measured},
          {"good", a->good},
          {"slots", a->slots},
          {"skipped", a->skipped}};
}

json LatencyJson(const std::optional<LatencyRow>& l) {
  if (!l) return nullptr;
  return {{"percentile", l->percentile},      {"below_s", l->below_s},
          {"measured_s", Opt(l->measured_s)}, {"samples", l->samples},
          {"failures", l->failures},          {"min_samples", l->min_samples}};
}

}  // namespace

std::string RenderJson(const ReportModel& m) {
  json j;
  j["experiment"] = m.experiment;
  j["run_id"] = m.run_id;
  j["verdict"] = m.verdict;
  j["exit_code"] = m.exit_code;
  j["reason"] = m.reason;
  j["started_at"] = m.started_at;
  j["ended_at"] = m.ended_at;
  j["duration_s"] = m.duration_s;
  // Instants are seconds from the run's start on the monotonic clock; the monotonic origin is
  // given too, so they compare with CLOCK_MONOTONIC stamps logged by services on the same machine.
  j["timeline"] = {
      {"monotonic_origin_ns", m.monotonic_origin_ns},
      {"t_inject_first_s", Opt(m.t_inject_first_s)},
      {"t_inject_s", Opt(m.t_inject_s)},
      {"t_revert_start_s", Opt(m.t_revert_start_s)},
      {"t_revert_s", Opt(m.t_revert_s)},
      {"t_end_s", m.t_end_s},
  };
  j["targets"] = m.targets;
  j["objectives"] = json::array();
  for (const auto& o : m.objectives) {
    j["objectives"].push_back({
        {"name", o.name},
        {"probe", o.probe},
        {"after", o.after},
        {"verdict", o.verdict},
        {"target_s", o.target_s},
        {"stable_for_s", o.stable_for_s},
        {"time_to_detect_s", Opt(o.time_to_detect_s)},
        {"time_to_recover_s", Opt(o.time_to_recover_s)},
        {"time_to_detect_bracket_s", OptBracket(o.detect_bracket)},
        {"time_to_recover_bracket_s", OptBracket(o.recover_bracket)},
        {"inconclusive", o.inconclusive},
        {"uncertainty_s", o.uncertainty_s},
        {"availability", o.availability},
        {"downtime_s", o.downtime_s},
        {"no_impact", o.no_impact},
        {"samples", o.samples},
        {"failures", o.failures},
        {"note", o.note},
        {"kind", o.kind},
        {"limit", o.limit},
        {"measured", o.measured},
        {"state", o.state},
        {"availability_objective", AvailabilityJson(o.availability_objective)},
        {"latency_objective", LatencyJson(o.latency_objective)},
    });
  }
  j["faults"] = json::array();
  for (const auto& f : m.faults) {
    json agents = json::array();
    for (const auto& a : f.agents) {
      agents.push_back({
          {"agent", a.agent},
          {"applied_at", Opt(a.applied_at_s)},
          {"reverted_at", Opt(a.reverted_at_s)},
          {"applied_at_wall", a.applied_at_wall},
          {"reverted_at_wall", a.reverted_at_wall},
          {"revert_reason", a.revert_reason},
          {"evidence", a.evidence},
          {"state_unknown", a.state_unknown},
          {"error", a.error.empty() ? json(nullptr) : json(a.error)},
          {"workload", a.workload.empty() ? json(nullptr) : json(a.workload)},
      });
    }
    j["faults"].push_back({{"name", f.name},
                           {"fault_id", f.fault_id},
                           {"kind", f.kind},
                           {"target", f.target},
                           {"agents", agents}});
  }
  j["probes"] = json::array();
  for (const auto& p : m.probes) {
    json samples = json::array();
    for (const auto& s : p.samples) {
      json sample = {{"t_s", s.t_s},
                     {"answered_s", s.answered_s},
                     {"ok", s.ok},
                     {"latency_ms", s.latency_ms},
                     {"detail", s.detail}};
      if (!s.where.empty()) {
        sample["where"] = s.where;
        sample["clock_error_ms"] = s.clock_error_ms;
      }
      samples.push_back(std::move(sample));
    }
    json ran_on = json::array();
    for (const auto& site : p.ran_on) {
      json one = {{"agent", site.agent},
                  {"ran_in", site.workload.empty() ? "host" : "workload"},
                  {"clock_offset_ms", site.clock_offset_ms},
                  {"clock_error_ms", site.clock_error_ms},
                  {"clock_rtt_ms", site.clock_rtt_ms}};
      if (!site.workload.empty()) one["workload"] = site.workload;
      ran_on.push_back(std::move(one));
    }
    j["probes"].push_back({
        {"name", p.name},
        {"from", p.from},
        {"ran_on", ran_on},
        {"interval_s", p.interval_s},
        {"latency_ms",
         {{"p50", p.p50_ms}, {"p90", p.p90_ms}, {"p99", p.p99_ms}, {"max", p.max_ms}}},
        {"max_in_flight", p.max_in_flight},
        {"samples", samples},
        {"skipped_slots_s", p.skipped_s},
    });
  }
  j["warnings"] = m.warnings;
  j["annotations"] = json::array();
  for (const auto& a : m.annotations) {
    j["annotations"].push_back(
        {{"t_s", Opt(a.t_s)}, {"at", a.at_wall}, {"author", a.author}, {"text", a.text}});
  }
  // Strings come from experiment files and agents: replace invalid UTF-8 instead of throwing.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string RenderJson(const engine::RunResult& run) { return RenderJson(FromRun(run)); }

std::string RenderText(const ReportModel& m) {
  std::string out;
  out += fmt::format("\nExperiment {}  run {}\n", m.experiment, m.run_id);
  out += fmt::format("Verdict: {}  ({})\n", m.verdict, m.reason);
  if (m.t_inject_s) {
    out += fmt::format("Fault in effect at +{:.2f}s (first ack +{:.2f}s), reverted at +{:.2f}s\n",
                       *m.t_inject_s, m.t_inject_first_s.value_or(*m.t_inject_s),
                       m.t_revert_s.value_or(0.0));
  }
  if (!m.objectives.empty()) {
    out += "\nObjectives\n";
    out += fmt::format("  {:<24} {:<7} {:>9} {:>10} {:>11} {:>16} {:>8}\n", "name", "verdict",
                       "target", "detect", "recover", "recover truth in", "avail");
    for (const auto& o : m.objectives) {
      out += fmt::format("  {:<24} {:<7} {:>9} {:>10} {:>11} {:>16} {:>7.1f}%\n", o.name, o.verdict,
                         Human(o.target_s), Fmt(o.time_to_detect_s), Fmt(o.time_to_recover_s),
                         FmtBracket(o.recover_bracket), o.availability * 100);
      out += fmt::format("      {}: {}; measured {} ({})\n", o.kind, o.limit, o.measured, o.state);
      out += fmt::format("      after {}: {}\n", o.after, o.note);
      if (o.detect_bracket) {
        out += fmt::format("      impact began in {} after {}\n", FmtBracket(o.detect_bracket),
                           o.after);
      }
    }
  }
  if (!m.faults.empty()) {
    out += "\nFaults\n";
    for (const auto& f : m.faults) {
      for (const auto& a : f.agents) {
        std::string ev;
        for (const auto& [k, v] : a.evidence) {
          ev += fmt::format("{}{}={}", ev.empty() ? "" : ", ", k, v);
        }
        out += fmt::format("  {} on {} ({}, id {}): applied {}, reverted {}{}\n", f.name,
                           a.workload.empty() ? a.agent : a.workload, f.kind, f.fault_id,
                           a.applied_at_s ? fmt::format("+{:.2f}s", *a.applied_at_s) : "—",
                           a.reverted_at_s ? fmt::format("+{:.2f}s", *a.reverted_at_s) : "—",
                           a.revert_reason.empty() ? "" : " (" + a.revert_reason + ")");
        out += "      evidence: " + (ev.empty() ? std::string("none reported") : ev) + "\n";
        if (!a.error.empty()) out += "      error: " + a.error + "\n";
      }
    }
  }
  if (!m.probes.empty()) {
    out += "\nProbes\n";
    for (const auto& p : m.probes) {
      int ok = 0;
      for (const auto& s : p.samples) ok += s.ok;
      out += fmt::format(
          "  {:<24} {} samples, {} ok; latency p50 {:.1f}ms p90 {:.1f}ms p99 {:.1f}ms\n", p.name,
          p.samples.size(), ok, p.p50_ms, p.p90_ms, p.p99_ms);
      if (p.from != "controller") {
        std::string where;
        for (const auto& site : p.ran_on) {
          where += fmt::format("{}{} (clock ±{:.3f}ms)", where.empty() ? "" : ", ",
                               site.workload.empty() ? "host " + site.agent : site.workload,
                               site.clock_error_ms);
        }
        out += fmt::format("      from {}: ran on {}; brackets widened by the clock error\n",
                           p.from, where.empty() ? std::string("no agent") : where);
      }
      if (!p.skipped_s.empty()) {
        out += fmt::format(
            "      {} scheduled sample(s) not sent (the bound of {} in flight was reached, or the "
            "schedule ran late)\n",
            p.skipped_s.size(), p.max_in_flight);
      }
    }
  }
  if (!m.annotations.empty()) {
    out += "\nAnnotations\n";
    for (const auto& a : m.annotations) {
      out += fmt::format("  {} {}{}\n", a.t_s ? fmt::format("+{:.2f}s", *a.t_s) : a.at_wall,
                         a.author.empty() ? "" : a.author + ": ", a.text);
    }
  }
  for (const auto& w : m.warnings) out += "warning: " + w + "\n";
  // Names, errors, evidence and annotations come from files, agents and people.
  return StripTerminalControls(out);
}

std::string RenderText(const engine::RunResult& run) { return RenderText(FromRun(run)); }

std::string RenderVerdictLine(const ReportModel& m) {
  return StripTerminalControls(
             fmt::format("{} {} (run {}): {}", m.verdict, m.experiment, m.run_id, m.reason),
             false) +
         "\n";
}

Status WriteReportFile(const std::string& path, const std::string& content) {
  return WriteFileAtomically(path, content, 0644);
}

Status WriteJsonReport(const engine::RunResult& run, const std::string& path) {
  return WriteReportFile(path, RenderJson(run));
}

}  // namespace faultline::report
