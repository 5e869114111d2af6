#include "controller/report/report_model.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace faultline::report {

using engine::RunResult;
using json = nlohmann::json;

namespace {

double Offset(const RunResult& r, MonoTime t) { return ToSeconds(t - r.started); }

std::optional<double> OptOffset(const RunResult& r, const std::optional<MonoTime>& t) {
  return t ? std::optional<double>(Offset(r, *t)) : std::nullopt;
}

std::optional<double> OptSeconds(const std::optional<Duration>& d) {
  return d ? std::optional<double>(ToSeconds(*d)) : std::nullopt;
}

std::optional<TimeBracket> OptBracket(const std::optional<engine::Bracket>& b) {
  return b ? std::optional<TimeBracket>(TimeBracket{ToSeconds(b->lo), ToSeconds(b->hi)})
           : std::nullopt;
}

// A limit as written in an experiment ("15m", "500ms").
std::string Human(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 7 * 86400.0) {
    return fmt::format("{:.2f}s", seconds);
  }
  return FormatDuration(Duration(std::llround(seconds * 1e9)));
}

std::string Bracketed(const std::optional<double>& point, const std::optional<TimeBracket>& b) {
  std::string out = fmt::format("{:.2f}s", point.value_or(0));
  if (b) out += fmt::format(" in [{:.2f}s, {:.2f}s]", b->lo_s, b->hi_s);
  return out;
}

// Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fff]Z".
std::optional<int64_t> ParseIsoMs(const std::string& s) {
  tm t{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &t);
  if (rest == nullptr) return std::nullopt;
  int64_t ms = 0;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 3) ms = ms * 10 + (*rest - '0');
      ++digits;
      ++rest;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (std::string_view(rest) != "Z") return std::nullopt;
  return static_cast<int64_t>(timegm(&t)) * 1000 + ms;
}

// Field readers for ParseReportJson: each names the field path in its error.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  Status Fail(const std::string& path, const std::string& what) {
    if (status_.ok()) status_ = InvalidArgument(source_ + ": " + path + ": " + what);
    return status_;
  }
  const Status& status() const { return status_; }

  const json* Field(const json& obj, const std::string& path, const char* key, bool required) {
    if (!obj.is_object()) {
      Fail(path, "expected an object");
      return nullptr;
    }
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) Fail(Join(path, key), "missing");
      return nullptr;
    }
    return &*it;
  }

  void String(const json& obj, const std::string& path, const char* key, std::string* out,
              bool required = false) {
    Typed(obj, path, key, out, &json::is_string, "expected a string", required);
  }
  void Number(const json& obj, const std::string& path, const char* key, double* out) {
    Typed(obj, path, key, out, &json::is_number, "expected a number");
  }
  void Integer(const json& obj, const std::string& path, const char* key, int64_t* out) {
    Typed(obj, path, key, out, &json::is_number_integer, "expected an integer");
  }
  void Bool(const json& obj, const std::string& path, const char* key, bool* out) {
    Typed(obj, path, key, out, &json::is_boolean, "expected true or false");
  }
  // [lo, hi]: two numbers, lo <= hi; absent or null leaves *out unset.
  void OptBracket(const json& obj, const std::string& path, const char* key,
                  std::optional<TimeBracket>* out) {
    const json* v = Field(obj, path, key, false);
    if (v == nullptr) return;
    if (!v->is_array() || v->size() != 2 || !(*v)[0].is_number() || !(*v)[1].is_number() ||
        (*v)[0].get<double>() > (*v)[1].get<double>()) {
      Fail(Join(path, key), "expected [lo, hi], two numbers with lo <= hi");
      return;
    }
    *out = TimeBracket{(*v)[0].get<double>(), (*v)[1].get<double>()};
  }
  void OptNumber(const json& obj, const std::string& path, const char* key,
                 std::optional<double>* out) {
    double d = 0;
    if (Field(obj, path, key, false)) {
      Number(obj, path, key, &d);
      *out = d;
    }
  }

  // Calls `each(element, path)` for every element of an array field (absent: none).
  template <typename F>
  void Array(const json& obj, const std::string& path, const char* key, F each) {
    const json* v = Field(obj, path, key, false);
    if (v == nullptr) return;
    if (!v->is_array()) {
      Fail(Join(path, key), "expected a list");
      return;
    }
    for (size_t i = 0; i < v->size() && status_.ok(); ++i) {
      each((*v)[i], fmt::format("{}[{}]", Join(path, key), i));
    }
  }

  static std::string Join(const std::string& path, const char* key) {
    return path.empty() ? std::string(key) : path + "." + key;
  }

 private:
  // Reads `key` into *out when present and of the type `is_type` accepts; otherwise fails with
  // `expected` (or "missing" when required and absent).
  template <typename T>
  void Typed(const json& obj, const std::string& path, const char* key, T* out,
             bool (json::*is_type)() const noexcept, const char* expected, bool required = false) {
    if (const json* v = Field(obj, path, key, required)) {
      if ((v->*is_type)()) {
        *out = v->get<T>();
      } else {
        Fail(Join(path, key), expected);
      }
    }
  }

  std::string source_;
  Status status_;
};

}  // namespace

void DescribeObjective(ObjectiveRow& o) {
  if (o.verdict == "PASS") {
    o.state = "met";
  } else if (o.verdict == "FAIL") {
    o.state = o.inconclusive ? "inconclusive" : "missed";
  } else {
    o.state = "unknown";
  }
  const bool unmeasured = o.samples == 0 && o.verdict != "PASS" && o.verdict != "FAIL";
  if (o.kind == "detect_within") {
    o.limit = "detect within " + Human(o.target_s);
    o.measured = unmeasured           ? "—"
                 : o.time_to_detect_s ? Bracketed(o.time_to_detect_s, o.detect_bracket)
                                      : "not detected";
  } else if (o.kind == "availability") {
    const auto& a = o.availability_objective;
    o.limit = a ? fmt::format("at least {:g}% of samples good", a->min * 100) : "availability";
    o.measured = !a || a->slots == 0 ? "—"
                                     : fmt::format("{:.2f}% ({} of {} samples good)",
                                                   a->measured * 100, a->good, a->slots);
  } else if (o.kind == "latency") {
    const auto& l = o.latency_objective;
    o.limit = l ? fmt::format("p{:g} below {}", l->percentile, Human(l->below_s)) : "latency";
    if (!l) {
      o.measured = "—";
    } else if (l->measured_s) {
      o.measured = fmt::format("{:.1f}ms over {} samples", *l->measured_s * 1000, l->samples);
    } else {
      o.measured = fmt::format("— ({} of the {} samples needed)", l->samples, l->min_samples);
    }
  } else {
    o.limit = "recover within " + Human(o.target_s) + (o.after == "revert" ? " of revert" : "") +
              (o.stable_for_s > 0 ? " (stable " + Human(o.stable_for_s) + ")" : "");
    o.measured = unmeasured            ? "—"
                 : o.no_impact         ? "no impact observed"
                 : o.time_to_recover_s ? Bracketed(o.time_to_recover_s, o.recover_bracket)
                                       : "not recovered";
  }
}

ReportModel FromRun(const RunResult& r) {
  ReportModel m;
  m.experiment = r.experiment;
  m.run_id = r.run_id;
  m.verdict = engine::VerdictName(r.verdict);
  m.exit_code = engine::ExitCodeFor(r.verdict);
  m.reason = r.reason;
  m.started_at = IsoTime(r.started_unix_ms);
  m.ended_at = IsoTime(r.ended_unix_ms);
  m.duration_s = ToSeconds(r.ended - r.started);
  m.monotonic_origin_ns = r.started.count();
  m.t_inject_first_s = OptOffset(r, r.t_inject_first);
  m.t_inject_s = OptOffset(r, r.t_inject);
  m.t_revert_start_s = OptOffset(r, r.t_revert_start);
  m.t_revert_s = OptOffset(r, r.t_revert);
  m.t_end_s = Offset(r, r.ended);
  m.targets = r.targets;
  for (const auto& o : r.objectives) {
    const auto& f = o.figures;
    ObjectiveRow row;
    row.name = o.name;
    row.probe = o.probe;
    row.after = o.phase == experiment::Objective::Phase::kInject ? "inject" : "revert";
    row.verdict = engine::ObjectiveVerdictName(o.verdict);
    row.target_s = ToSeconds(o.target);
    row.stable_for_s = ToSeconds(o.stable_for);
    row.time_to_detect_s = OptSeconds(f.time_to_detect);
    row.time_to_recover_s = OptSeconds(f.time_to_recover);
    row.detect_bracket = OptBracket(f.detect_bracket);
    row.recover_bracket = OptBracket(f.recover_bracket);
    row.inconclusive = o.inconclusive;
    row.uncertainty_s = ToSeconds(f.uncertainty);
    row.availability = f.availability;
    row.downtime_s = ToSeconds(f.downtime);
    row.no_impact = f.no_impact;
    row.samples = f.samples;
    row.failures = f.failures;
    row.note = o.note;
    row.kind = experiment::ObjectiveKindName(o.kind);
    if (o.availability) {
      const auto& a = *o.availability;
      row.availability_objective = AvailabilityRow{a.min, a.measured, a.good, a.slots, a.skipped};
    }
    if (o.latency) {
      const auto& l = *o.latency;
      row.latency_objective = LatencyRow{
          l.limit.percentile, ToSeconds(l.limit.below), OptSeconds(l.measured), l.samples,
          l.failures,         l.limit.min_samples};
    }
    DescribeObjective(row);
    m.objectives.push_back(std::move(row));
  }
  // Faults are grouped by name, agents in the order their apply was sent.
  for (const auto& fa : r.faults) {
    auto it = std::find_if(m.faults.begin(), m.faults.end(),
                           [&](const FaultRow& f) { return f.name == fa.fault_name; });
    if (it == m.faults.end()) {
      m.faults.push_back({fa.fault_name, fa.fault_id, fa.kind, fa.target, {}});
      it = m.faults.end() - 1;
    }
    it->agents.push_back({fa.agent, OptOffset(r, fa.applied_at), OptOffset(r, fa.reverted_at),
                          IsoTime(fa.applied_at_unix_ms), IsoTime(fa.reverted_at_unix_ms),
                          fa.revert_reason, fa.evidence, fa.state_unknown, fa.error});
    if (fa.workload)
      it->agents.back().workload = engine::DescribeWorkload({fa.agent, *fa.workload});
  }
  for (const auto& p : r.probes) {
    ProbeRow row;
    row.name = p.name;
    row.interval_s = ToSeconds(p.interval);
    row.p50_ms = ToSeconds(p.latency.p50) * 1000;
    row.p90_ms = ToSeconds(p.latency.p90) * 1000;
    row.p99_ms = ToSeconds(p.latency.p99) * 1000;
    row.max_ms = ToSeconds(p.latency.max) * 1000;
    row.max_in_flight = p.max_in_flight;
    row.from = p.from;
    for (const auto& site : p.sites) {
      row.ran_on.push_back({site.agent, ToSeconds(site.clock_offset) * 1000,
                            ToSeconds(site.clock_error) * 1000, ToSeconds(site.clock_rtt) * 1000,
                            site.workload});
    }
    for (const auto& s : p.samples) {
      row.samples.push_back({Offset(r, s.sample.at), Offset(r, s.sample.AnsweredAt()), s.sample.ok,
                             ToSeconds(s.sample.latency) * 1000, s.detail, s.where,
                             ToSeconds(s.sample.clock_error) * 1000});
    }
    for (MonoTime t : p.skipped) row.skipped_s.push_back(Offset(r, t));
    m.probes.push_back(std::move(row));
  }
  m.warnings = r.warnings;
  return m;
}

Result<ReportModel> ParseReportJson(std::string_view text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions only to learn where it broke (nlohmann reports byte offsets).
    try {
      json again = json::parse(text);
      (void)again;
    } catch (const json::exception& e) {
      return InvalidArgument(source + ": not a JSON report: " + e.what());
    }
    return InvalidArgument(source + ": not a JSON report");
  }
  Reader rd(source);
  ReportModel m;
  if (!j.is_object()) return InvalidArgument(source + ": not a JSON report: expected an object");
  rd.String(j, "", "experiment", &m.experiment, true);
  rd.String(j, "", "run_id", &m.run_id, true);
  rd.String(j, "", "verdict", &m.verdict, true);
  int64_t exit_code = m.exit_code;
  rd.Integer(j, "", "exit_code", &exit_code);
  m.exit_code = static_cast<int>(exit_code);
  rd.String(j, "", "reason", &m.reason);
  rd.String(j, "", "started_at", &m.started_at);
  rd.String(j, "", "ended_at", &m.ended_at);
  rd.Number(j, "", "duration_s", &m.duration_s);
  if (const json* tl = rd.Field(j, "", "timeline", false)) {
    rd.Integer(*tl, "timeline", "monotonic_origin_ns", &m.monotonic_origin_ns);
    rd.OptNumber(*tl, "timeline", "t_inject_first_s", &m.t_inject_first_s);
    rd.OptNumber(*tl, "timeline", "t_inject_s", &m.t_inject_s);
    rd.OptNumber(*tl, "timeline", "t_revert_start_s", &m.t_revert_start_s);
    rd.OptNumber(*tl, "timeline", "t_revert_s", &m.t_revert_s);
    rd.Number(*tl, "timeline", "t_end_s", &m.t_end_s);
  }
  if (const json* t = rd.Field(j, "", "targets", false)) {
    if (!t->is_object()) {
      rd.Fail("targets", "expected a map of target to agent names");
    } else {
      for (const auto& [name, agents] : t->items()) {
        auto& list = m.targets[name];
        if (!agents.is_array()) {
          rd.Fail("targets." + name, "expected a list");
          break;
        }
        for (const auto& a : agents) {
          if (!a.is_string()) {
            rd.Fail("targets." + name, "expected agent names");
            break;
          }
          list.push_back(a.get<std::string>());
        }
      }
    }
  }
  rd.Array(j, "", "objectives", [&](const json& o, const std::string& p) {
    ObjectiveRow row;
    rd.String(o, p, "name", &row.name, true);
    rd.String(o, p, "probe", &row.probe);
    rd.String(o, p, "after", &row.after);
    rd.String(o, p, "verdict", &row.verdict, true);
    rd.Number(o, p, "target_s", &row.target_s);
    rd.Number(o, p, "stable_for_s", &row.stable_for_s);
    rd.OptNumber(o, p, "time_to_detect_s", &row.time_to_detect_s);
    rd.OptNumber(o, p, "time_to_recover_s", &row.time_to_recover_s);
    rd.OptBracket(o, p, "time_to_detect_bracket_s", &row.detect_bracket);
    rd.OptBracket(o, p, "time_to_recover_bracket_s", &row.recover_bracket);
    rd.Bool(o, p, "inconclusive", &row.inconclusive);
    rd.Number(o, p, "uncertainty_s", &row.uncertainty_s);
    rd.Number(o, p, "availability", &row.availability);
    rd.Number(o, p, "downtime_s", &row.downtime_s);
    rd.Bool(o, p, "no_impact", &row.no_impact);
    rd.Integer(o, p, "samples", &row.samples);
    rd.Integer(o, p, "failures", &row.failures);
    rd.String(o, p, "note", &row.note);
    rd.String(o, p, "kind", &row.kind);
    if (const json* a = rd.Field(o, p, "availability_objective", false); a && !a->is_null()) {
      AvailabilityRow ar;
      const std::string ap = p + ".availability_objective";
      rd.Number(*a, ap, "min", &ar.min);
      rd.Number(*a, ap, "measured", &ar.measured);
      rd.Integer(*a, ap, "good", &ar.good);
      rd.Integer(*a, ap, "slots", &ar.slots);
      rd.Integer(*a, ap, "skipped", &ar.skipped);
      row.availability_objective = ar;
    }
    if (const json* l = rd.Field(o, p, "latency_objective", false); l && !l->is_null()) {
      LatencyRow lr;
      const std::string lp = p + ".latency_objective";
      rd.Number(*l, lp, "percentile", &lr.percentile);
      rd.Number(*l, lp, "below_s", &lr.below_s);
      rd.OptNumber(*l, lp, "measured_s", &lr.measured_s);
      rd.Integer(*l, lp, "samples", &lr.samples);
      rd.Integer(*l, lp, "failures", &lr.failures);
      rd.Integer(*l, lp, "min_samples", &lr.min_samples);
      row.latency_objective = lr;
    }
    // Words are derived again, so a report written before they existed renders the same way.
    DescribeObjective(row);
    m.objectives.push_back(std::move(row));
  });
  rd.Array(j, "", "faults", [&](const json& f, const std::string& p) {
    FaultRow row;
    rd.String(f, p, "name", &row.name, true);
    rd.String(f, p, "fault_id", &row.fault_id);
    rd.String(f, p, "kind", &row.kind);
    rd.String(f, p, "target", &row.target);
    rd.Array(f, p, "agents", [&](const json& a, const std::string& ap) {
      FaultAgentRow ar;
      rd.String(a, ap, "agent", &ar.agent, true);
      rd.OptNumber(a, ap, "applied_at", &ar.applied_at_s);
      rd.OptNumber(a, ap, "reverted_at", &ar.reverted_at_s);
      rd.String(a, ap, "applied_at_wall", &ar.applied_at_wall);
      rd.String(a, ap, "reverted_at_wall", &ar.reverted_at_wall);
      rd.String(a, ap, "revert_reason", &ar.revert_reason);
      rd.Bool(a, ap, "state_unknown", &ar.state_unknown);
      rd.String(a, ap, "error", &ar.error);
      rd.String(a, ap, "workload", &ar.workload);
      if (const json* ev = rd.Field(a, ap, "evidence", false)) {
        if (!ev->is_object()) {
          rd.Fail(ap + ".evidence", "expected a map of counter to count");
        } else {
          for (const auto& [k, v] : ev->items()) {
            if (!v.is_number_unsigned()) {
              rd.Fail(ap + ".evidence." + k, "expected a count (unsigned integer)");
              break;
            }
            ar.evidence[k] = v.get<uint64_t>();
          }
        }
      }
      row.agents.push_back(std::move(ar));
    });
    m.faults.push_back(std::move(row));
  });
  rd.Array(j, "", "probes", [&](const json& pr, const std::string& p) {
    ProbeRow row;
    rd.String(pr, p, "name", &row.name, true);
    rd.Number(pr, p, "interval_s", &row.interval_s);
    if (const json* lat = rd.Field(pr, p, "latency_ms", false)) {
      std::string lp = p + ".latency_ms";
      rd.Number(*lat, lp, "p50", &row.p50_ms);
      rd.Number(*lat, lp, "p90", &row.p90_ms);
      rd.Number(*lat, lp, "p99", &row.p99_ms);
      rd.Number(*lat, lp, "max", &row.max_ms);
    }
    rd.Integer(pr, p, "max_in_flight", &row.max_in_flight);
    rd.String(pr, p, "from", &row.from);  // absent (older reports): from the controller
    rd.Array(pr, p, "ran_on", [&](const json& a, const std::string& ap) {
      ProbeSiteRow site;
      rd.String(a, ap, "agent", &site.agent, true);
      rd.String(a, ap, "workload", &site.workload);  // absent: on the agent's host
      rd.Number(a, ap, "clock_offset_ms", &site.clock_offset_ms);
      rd.Number(a, ap, "clock_error_ms", &site.clock_error_ms);
      rd.Number(a, ap, "clock_rtt_ms", &site.clock_rtt_ms);
      row.ran_on.push_back(std::move(site));
    });
    rd.Array(pr, p, "skipped_slots_s", [&](const json& t, const std::string& tp) {
      if (!t.is_number()) {
        rd.Fail(tp, "expected a number");
        return;
      }
      row.skipped_s.push_back(t.get<double>());
    });
    rd.Array(pr, p, "samples", [&](const json& s, const std::string& sp) {
      SampleRow sr;
      rd.Number(s, sp, "t_s", &sr.t_s);
      rd.Bool(s, sp, "ok", &sr.ok);
      rd.Number(s, sp, "latency_ms", &sr.latency_ms);
      std::optional<double> answered;
      rd.OptNumber(s, sp, "answered_s", &answered);
      sr.answered_s = answered.value_or(sr.t_s + sr.latency_ms / 1000.0);
      rd.String(s, sp, "detail", &sr.detail);
      rd.String(s, sp, "where", &sr.where);
      rd.Number(s, sp, "clock_error_ms", &sr.clock_error_ms);
      row.samples.push_back(std::move(sr));
    });
    m.probes.push_back(std::move(row));
  });
  rd.Array(j, "", "warnings", [&](const json& w, const std::string& p) {
    if (!w.is_string()) {
      rd.Fail(p, "expected a string");
      return;
    }
    m.warnings.push_back(w.get<std::string>());
  });
  rd.Array(j, "", "annotations", [&](const json& a, const std::string& p) {
    Annotation an;
    rd.OptNumber(a, p, "t_s", &an.t_s);
    rd.String(a, p, "at", &an.at_wall);
    rd.String(a, p, "author", &an.author);
    rd.String(a, p, "text", &an.text, true);
    if (!an.t_s) an.t_s = OffsetOfWallTime(m.started_at, an.at_wall);
    m.annotations.push_back(std::move(an));
  });
  if (!rd.status().ok()) return rd.status();
  return m;
}

std::string IsoTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "";
  time_t secs = unix_ms / 1000;
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(unix_ms % 1000));
}

Result<ReportModel> LoadReportFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read report " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseReportJson(buf.str(), path);
}

std::optional<double> OffsetOfWallTime(const std::string& started_at, const std::string& at) {
  auto start = ParseIsoMs(started_at);
  auto when = ParseIsoMs(at);
  if (!start || !when) return std::nullopt;
  return static_cast<double>(*when - *start) / 1000.0;
}

}  // namespace faultline::report
