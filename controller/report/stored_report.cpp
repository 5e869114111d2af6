#include "controller/report/stored_report.h"

#include <spdlog/fmt/fmt.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "controller/report/report.h"

namespace faultline::report {

using json = nlohmann::json;

namespace {

// Seconds → nanoseconds, rounded: the report keeps offsets as doubles.
Duration FromSeconds(double s) { return Duration(static_cast<int64_t>(std::llround(s * 1e9))); }

int64_t IsoToUnixMs(const std::string& iso) {
  if (iso.empty()) return 0;
  tm t{};
  int ms = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &t.tm_year, &t.tm_mon, &t.tm_mday,
                  &t.tm_hour, &t.tm_min, &t.tm_sec, &ms) < 6) {
    return 0;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&t)) * 1000 + ms;
}

std::optional<MonoTime> OptAt(MonoTime origin, const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return origin + FromSeconds(j[key].get<double>());
}

std::optional<Duration> OptDuration(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return FromSeconds(j[key].get<double>());
}

engine::Verdict ParseVerdict(const std::string& v) {
  if (v == "PASS") return engine::Verdict::kPass;
  if (v == "FAIL") return engine::Verdict::kFail;
  if (v == "ABORTED") return engine::Verdict::kAborted;
  return engine::Verdict::kError;
}

engine::ObjectiveVerdict ParseObjectiveVerdict(const std::string& v) {
  if (v == "PASS") return engine::ObjectiveVerdict::kPass;
  if (v == "FAIL") return engine::ObjectiveVerdict::kFail;
  return engine::ObjectiveVerdict::kUnknown;
}

json AnnotationsJson(const store::StoredRun& s) {
  json out = json::array();
  for (const auto& a : s.annotations) {
    out.push_back({{"at", IsoTime(a.at_unix_ms)},
                   {"at_unix_ms", a.at_unix_ms},
                   {"t_s", (a.at_unix_ms - s.run.started_unix_ms) / 1000.0},
                   {"author", a.author},
                   {"text", a.text}});
  }
  return out;
}

}  // namespace

std::string IsoTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "";
  time_t secs = unix_ms / 1000;
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(unix_ms % 1000));
}

Result<engine::RunResult> ParseJsonReport(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("the report is not a JSON object");
  // nlohmann throws type_error on a field of the wrong type; turn it into a Status here.
  try {
    engine::RunResult r;
    r.experiment = j.value("experiment", "");
    r.run_id = j.value("run_id", "");
    r.verdict = ParseVerdict(j.value("verdict", ""));
    r.reason = j.value("reason", "");
    r.started_unix_ms = IsoToUnixMs(j.value("started_at", ""));
    r.ended_unix_ms = IsoToUnixMs(j.value("ended_at", ""));
    const json tl = j.value("timeline", json::object());
    MonoTime origin(tl.value("monotonic_origin_ns", int64_t{0}));
    r.started = origin;
    r.t_inject_first = OptAt(origin, tl, "t_inject_first_s");
    r.t_inject = OptAt(origin, tl, "t_inject_s");
    r.t_revert_start = OptAt(origin, tl, "t_revert_start_s");
    r.t_revert = OptAt(origin, tl, "t_revert_s");
    r.ended = OptAt(origin, tl, "t_end_s").value_or(origin);
    if (j.contains("targets")) {
      r.targets = j["targets"].get<std::map<std::string, std::vector<std::string>>>();
    }
    for (const auto& o : j.value("objectives", json::array())) {
      engine::ObjectiveResult obj;
      obj.name = o.value("name", "");
      obj.probe = o.value("probe", "");
      obj.phase = o.value("after", "inject") == "revert" ? experiment::Objective::Phase::kRevert
                                                         : experiment::Objective::Phase::kInject;
      obj.verdict = ParseObjectiveVerdict(o.value("verdict", ""));
      obj.target = FromSeconds(o.value("target_s", 0.0));
      obj.stable_for = FromSeconds(o.value("stable_for_s", 0.0));
      obj.figures.time_to_detect = OptDuration(o, "time_to_detect_s");
      obj.figures.time_to_recover = OptDuration(o, "time_to_recover_s");
      obj.figures.uncertainty = FromSeconds(o.value("uncertainty_s", 0.0));
      obj.figures.availability = o.value("availability", 1.0);
      obj.figures.downtime = FromSeconds(o.value("downtime_s", 0.0));
      obj.figures.no_impact = o.value("no_impact", false);
      obj.figures.samples = o.value("samples", 0);
      obj.figures.failures = o.value("failures", 0);
      obj.note = o.value("note", "");
      r.objectives.push_back(std::move(obj));
    }
    for (const auto& f : j.value("faults", json::array())) {
      for (const auto& a : f.value("agents", json::array())) {
        engine::FaultOnAgent fa;
        fa.fault_name = f.value("name", "");
        fa.fault_id = f.value("fault_id", "");
        fa.kind = f.value("kind", "");
        fa.target = f.value("target", "");
        fa.agent = a.value("agent", "");
        fa.applied_at = OptAt(origin, a, "applied_at");
        fa.reverted_at = OptAt(origin, a, "reverted_at");
        fa.applied_at_unix_ms = IsoToUnixMs(a.value("applied_at_wall", ""));
        fa.reverted_at_unix_ms = IsoToUnixMs(a.value("reverted_at_wall", ""));
        fa.revert_reason = a.value("revert_reason", "");
        if (a.contains("evidence"))
          fa.evidence = a["evidence"].get<std::map<std::string, uint64_t>>();
        fa.state_unknown = a.value("state_unknown", false);
        if (a.contains("error") && a["error"].is_string()) fa.error = a["error"].get<std::string>();
        r.faults.push_back(std::move(fa));
      }
    }
    for (const auto& p : j.value("probes", json::array())) {
      engine::ProbeRecord pr;
      pr.name = p.value("name", "");
      pr.interval = FromSeconds(p.value("interval_s", 0.0));
      const json lat = p.value("latency_ms", json::object());
      pr.latency.p50 = FromSeconds(lat.value("p50", 0.0) / 1000);
      pr.latency.p90 = FromSeconds(lat.value("p90", 0.0) / 1000);
      pr.latency.p99 = FromSeconds(lat.value("p99", 0.0) / 1000);
      pr.latency.max = FromSeconds(lat.value("max", 0.0) / 1000);
      for (const auto& s : p.value("samples", json::array())) {
        engine::ProbeSample ps;
        ps.sample.at = origin + FromSeconds(s.value("t_s", 0.0));
        ps.sample.ok = s.value("ok", false);
        ps.sample.latency = FromSeconds(s.value("latency_ms", 0.0) / 1000);
        ps.detail = s.value("detail", "");
        pr.samples.push_back(std::move(ps));
      }
      pr.latency.count = static_cast<int>(pr.samples.size());
      r.probes.push_back(std::move(pr));
    }
    if (j.contains("warnings")) r.warnings = j["warnings"].get<std::vector<std::string>>();
    return r;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("malformed JSON report: ") + e.what());
  }
}

Result<std::string> RenderStoredJson(const store::StoredRun& stored) {
  json j;
  if (!stored.run.report_json.empty()) {
    j = json::parse(stored.run.report_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return InvalidArgument("the stored report of run " + stored.run.id + " is not valid JSON");
    }
  } else {
    // No report (the run is still going, or its controller died): what the store knows.
    j = {{"experiment", stored.run.experiment},
         {"run_id", stored.run.id},
         {"verdict", stored.run.verdict.empty() ? json(nullptr) : json(stored.run.verdict)},
         {"started_at", IsoTime(stored.run.started_unix_ms)},
         {"ended_at", IsoTime(stored.run.ended_unix_ms)}};
  }
  j["state"] = store::RunStateName(stored.run.state);
  j["source"] = stored.run.source;
  j["annotations"] = AnnotationsJson(stored);
  return j.dump(2) + "\n";
}

Result<std::string> RenderStoredText(const store::StoredRun& stored) {
  std::string out;
  if (stored.run.report_json.empty()) {
    out = fmt::format(
        "\nExperiment {}  run {}\nState: {} (no report: {})\nStarted {}{}\n", stored.run.experiment,
        stored.run.id, store::RunStateName(stored.run.state),
        stored.run.state == store::RunState::kRunning
            ? "the run has not finished"
            : "the run was interrupted before it could report",
        IsoTime(stored.run.started_unix_ms),
        stored.run.ended_unix_ms > 0 ? ", ended " + IsoTime(stored.run.ended_unix_ms) : "");
  } else {
    auto r = ParseJsonReport(stored.run.report_json);
    if (!r.ok()) return r.status();
    out = RenderText(*r);
    if (stored.run.state == store::RunState::kInterrupted) {
      out +=
          "note: the run was marked interrupted (its controller was presumed dead) before "
          "this report arrived\n";
    }
  }
  if (!stored.annotations.empty()) {
    out += "\nAnnotations\n";
    for (const auto& a : stored.annotations) {
      out += fmt::format("  {:+9.2f}s  {}  {}: {}\n",
                         (a.at_unix_ms - stored.run.started_unix_ms) / 1000.0,
                         IsoTime(a.at_unix_ms), a.author.empty() ? "-" : a.author, a.text);
    }
  }
  return out;
}

}  // namespace faultline::report
