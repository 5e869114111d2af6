#include "controller/report/junit_report.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>

#include "controller/report/markup.h"
#include "controller/report/report.h"

namespace faultline::report {

namespace {

// xs:decimal for time attributes: never negative, never NaN or exponent notation.
std::string Seconds(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  return fmt::format("{:.3f}", s);
}

std::string Opt(const std::optional<double>& s) {
  return s ? fmt::format("{:.2f}s", *s) : std::string("not reached");
}

// The JUnit timestamp is xs:dateTime without a zone designator in the common schema. The model's
// started_at may come from a stored or hand-edited report: anything but YYYY-MM-DDTHH:MM:SS is
// left out rather than written into the attribute.
std::string Timestamp(const std::string& iso) {
  if (iso.size() < 19) return std::string();
  std::string t = iso.substr(0, 19);
  for (size_t i = 0; i < t.size(); ++i) {
    char want = i == 4 || i == 7 ? '-' : i == 10 ? 'T' : i == 13 || i == 16 ? ':' : '0';
    bool ok = want == '0' ? (t[i] >= '0' && t[i] <= '9') : t[i] == want;
    if (!ok) return std::string();
  }
  return t;
}

std::string OptBracket(const std::optional<TimeBracket>& b) {
  return b ? fmt::format("[{:.2f}s, {:.2f}s]", b->lo_s, b->hi_s) : std::string("none");
}

// Measured figures of one objective, for the failure/error body.
std::string Details(const ObjectiveRow& o) {
  return fmt::format(
      "objective {} (probe {}, measured after {})\n"
      "verdict: {}\n"
      "{}: {}; measured {} ({})\n"
      "target: {:.2f}s (stable for {:.2f}s)\n"
      "time to detect: {}\n"
      "time to recover: {}\n"
      "impact began in: {}\n"
      "recovery happened in: {}\n"
      "availability: {:.1f}% ({} samples, {} failed), downtime {:.2f}s\n"
      "{}\n",
      o.name, o.probe, o.after, o.verdict, o.kind, o.limit, o.measured, o.state, o.target_s,
      o.stable_for_s, Opt(o.time_to_detect_s), Opt(o.time_to_recover_s),
      OptBracket(o.detect_bracket), OptBracket(o.recover_bracket), o.availability * 100, o.samples,
      o.failures, o.downtime_s, o.note);
}

std::string FailureMessage(const ObjectiveRow& o) {
  if (o.kind != "recover_within") {
    return fmt::format("{} {}: {} (limit: {})", o.kind, o.state, o.measured, o.limit);
  }
  if (o.time_to_recover_s && o.recover_bracket) {
    return fmt::format("time_to_recover {:.2f}s, truth in {}, {} target {:.2f}s",
                       *o.time_to_recover_s, OptBracket(o.recover_bracket),
                       o.inconclusive ? "inconclusive against" : "later than", o.target_s);
  }
  if (o.time_to_recover_s) {
    return fmt::format("time_to_recover {:.2f}s > target {:.2f}s", *o.time_to_recover_s,
                       o.target_s);
  }
  return fmt::format("not recovered (target {:.2f}s): {}", o.target_s, o.note);
}

}  // namespace

std::string RenderJunit(const ReportModel& m) {
  bool run_broken = m.verdict == "ABORTED" || m.verdict == "ERROR";
  struct Case {
    std::string name;
    double time = 0;
    std::string kind;  // "", "failure", "error"
    std::string type, message, body;
  };
  std::vector<Case> cases;
  for (const auto& o : m.objectives) {
    Case c{o.name, o.time_to_recover_s.value_or(0), "", "", "", Details(o)};
    if (run_broken) {
      c.kind = "error";
      c.type = m.verdict == "ABORTED" ? "RunAborted" : "RunError";
      c.message = "run " + m.verdict + ": " + m.reason;
    } else if (o.verdict == "FAIL") {
      c.kind = "failure";
      c.type = "ObjectiveMissed";
      c.message = FailureMessage(o);
    } else if (o.verdict != "PASS") {
      c.kind = "error";
      c.type = "ObjectiveUnknown";
      c.message = "objective not measured: " + o.note;
    }
    cases.push_back(std::move(c));
  }
  // A run that ended before any objective was measured still has to turn the CI check red.
  if (cases.empty()) {
    Case c{"run", m.duration_s, "", "", "", m.reason + "\n"};
    if (m.verdict != "PASS") {
      c.kind = run_broken ? "error" : "failure";
      c.type = m.verdict == "ABORTED" ? "RunAborted"
               : m.verdict == "ERROR" ? "RunError"
                                      : "ObjectiveMissed";
      c.message = "run " + m.verdict + ": " + m.reason;
    }
    cases.push_back(std::move(c));
  }
  int failures = 0, errors = 0;
  for (const auto& c : cases) {
    failures += c.kind == "failure";
    errors += c.kind == "error";
  }

  const std::string suite = EscapeMarkup(m.experiment);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"faultline\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">\n",
      cases.size(), failures, errors, Seconds(m.duration_s));
  out += fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" "
      "time=\"{}\"{}>\n",
      suite, cases.size(), failures, errors, Seconds(m.duration_s),
      Timestamp(m.started_at).empty()
          ? ""
          : " timestamp=\"" + EscapeMarkup(Timestamp(m.started_at)) + "\"");
  out += "    <properties>\n";
  // Names carry objective names, which come from the experiment file: escaped like values.
  auto property = [&](const std::string& name, const std::string& value) {
    out += fmt::format("      <property name=\"{}\" value=\"{}\"/>\n", EscapeMarkup(name),
                       EscapeMarkup(value));
  };
  property("run_id", m.run_id);
  property("verdict", m.verdict);
  property("reason", m.reason);
  property("exit_code", std::to_string(m.exit_code));
  if (m.started_at.size()) property("started_at", m.started_at);
  // Each objective's brackets (seconds from its window's start): CI tools show suite properties,
  // and a passing testcase has no body to carry them.
  for (const auto& o : m.objectives) {
    property("objective." + o.name + ".kind", o.kind);
    property("objective." + o.name + ".limit", o.limit);
    property("objective." + o.name + ".measured", o.measured);
    property("objective." + o.name + ".state", o.state);
    if (o.detect_bracket) {
      property("objective." + o.name + ".time_to_detect_bracket_s",
               fmt::format("[{:.3f}, {:.3f}]", o.detect_bracket->lo_s, o.detect_bracket->hi_s));
    }
    if (o.recover_bracket) {
      property("objective." + o.name + ".time_to_recover_bracket_s",
               fmt::format("[{:.3f}, {:.3f}]", o.recover_bracket->lo_s, o.recover_bracket->hi_s));
    }
  }
  out += "    </properties>\n";
  for (const auto& c : cases) {
    out += fmt::format("    <testcase classname=\"faultline.{}\" name=\"{}\" time=\"{}\"", suite,
                       EscapeMarkup(c.name), Seconds(c.time));
    if (c.kind.empty()) {
      out += "/>\n";
      continue;
    }
    out += fmt::format(">\n      <{} message=\"{}\" type=\"{}\">{}</{}>\n    </testcase>\n", c.kind,
                       EscapeMarkup(c.message), c.type, EscapeMarkup(c.body), c.kind);
  }
  out += "    <system-out>" + EscapeMarkup(RenderText(m)) + "</system-out>\n";
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace faultline::report
