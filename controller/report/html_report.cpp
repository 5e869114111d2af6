#include "controller/report/html_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

#include "controller/report/html_parts.h"
#include "controller/report/markup.h"
#include "controller/report/timeline_svg.h"

namespace faultline::report {

namespace {

std::string E(std::string_view s) { return EscapeMarkup(s); }

std::string Secs(double s) { return fmt::format("{:.2f}s", s); }

std::string OptSecs(const std::optional<double>& s) { return s ? Secs(*s) : "—"; }

// Durations as a person reads them: "850ms", "12.4s", "15m", "1h30m".
std::string Human(double s) {
  if (!std::isfinite(s)) return "—";
  if (s < 1) return fmt::format("{:.0f}ms", s * 1000);
  if (s < 60)
    return std::fabs(s - std::round(s)) < 1e-9 ? fmt::format("{:.0f}s", s)
                                               : fmt::format("{:.1f}s", s);
  long total = std::lround(s);
  long h = total / 3600, m = (total % 3600) / 60, sec = total % 60;
  std::string out;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (sec) out += std::to_string(sec) + "s";
  return out;
}

// The smallest "nice" step (1, 2, 5 × 10^k) giving at most `max_ticks` ticks over `span`.
double NiceStep(double span, int max_ticks) {
  if (span <= 0) return 1;
  double raw = span / max_ticks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

const char* VerdictClass(const std::string& v) {
  if (v == "PASS") return "pass";
  if (v == "FAIL") return "fail";
  if (v == "ABORTED") return "aborted";
  return "error";
}
// The page rules, and the SVG rules from report_svg.css (shared with the console).
constexpr std::string_view kStyle =
    R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;
color:#1d2733;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.banner{padding:14px 18px;border-radius:8px;color:#fff;margin:12px 0}
.banner .verdict{font-size:28px;font-weight:700;margin-right:14px}
.banner.pass{background:#2a9d4b}.banner.fail{background:#c62828}
.banner.aborted{background:#d98e04}.banner.error{background:#5f6b76}
.meta{color:#55606b;font-size:13px}
table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #dde2e7;
padding:5px 10px;text-align:left;vertical-align:top}th{background:#f3f5f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{font-weight:700;padding:1px 7px;border-radius:4px;color:#fff}
.badge.pass{background:#2a9d4b}.badge.fail{background:#c62828}.badge.error,.badge.aborted{background:#5f6b76}
)"
// The SVG rules: controller/report/report_svg.css as a string literal (generated).
#include "controller/report/report_svg_css.inc"
    R"(.legend span{display:inline-block;margin-right:16px;font-size:12px}
.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
.warn{color:#9a5b00}
footer{margin-top:30px;color:#8a949e;font-size:11px}
)";

std::string Badge(const std::string& verdict) {
  return fmt::format("<span class=\"badge {}\">{}</span>", VerdictClass(verdict), E(verdict));
}

}  // namespace

std::string RenderHtml(const ReportModel& m) {
  std::string out;
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + E(m.verdict + " · " + m.experiment + " · faultline run " + m.run_id) +
         "</title>\n<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";

  out += "<h1>" + E(m.experiment) + "</h1>\n";
  out += "<div class=\"meta\">run <code>" + E(m.run_id) + "</code> · started " +
         E(m.started_at.empty() ? "—" : m.started_at) + " · ended " +
         E(m.ended_at.empty() ? "—" : m.ended_at) + " · " + Secs(m.duration_s) + "</div>\n";
  out += fmt::format(
      "<div class=\"banner {}\" id=\"verdict\"><span class=\"verdict\">{}</span>"
      "<span class=\"reason\">{}</span></div>\n",
      VerdictClass(m.verdict), E(m.verdict), E(m.reason));

  out += "<h2>Objectives</h2>\n";
  if (m.objectives.empty()) {
    out += "<p>No objective was measured.</p>\n";
  } else {
    out +=
        "<table id=\"objectives\"><tr><th>objective</th><th>verdict</th><th>limit</th>"
        "<th>measured</th><th>state</th><th>probe</th><th>measured "
        "after</th><th>target</th><th>time to detect</th><th>time to recover</th>"
        "<th>recovery truth in</th><th>availability</th><th>downtime</th><th>note</th></tr>\n";
    for (const auto& o : m.objectives) {
      out += fmt::format(
          "<tr data-kind=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>"
          "<td class=\"state {}\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{:.1f}%</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
          E(o.kind), E(o.name), Badge(o.verdict), E(o.limit), E(o.measured), E(o.state), E(o.state),
          E(o.probe), E(o.after), E(Human(o.target_s)), OptSecs(o.time_to_detect_s),
          OptSecs(o.time_to_recover_s),
          o.recover_bracket ? fmt::format("[{}, {}]", Secs(o.recover_bracket->lo_s),
                                          Secs(o.recover_bracket->hi_s))
                            : std::string("—"),
          o.availability * 100, Secs(o.downtime_s), E(o.note));
    }
    out += "</table>\n";
  }

  out += "<h2>Timeline</h2>\n";
  out +=
      "<div class=\"legend\">"
      "<span><i class=\"sw\" style=\"background:#f4a261;opacity:.6\"></i>fault window "
      "(apply → revert ack, per agent)</span>"
      "<span><i class=\"sw\" style=\"background:#2a9d4b\"></i>probe ok</span>"
      "<span><i class=\"sw\" style=\"background:#d62828\"></i>probe failed</span>"
      "<span><i class=\"sw\" style=\"background:#1f6feb;height:2px\"></i>latency</span>"
      "<span><i class=\"sw\" style=\"background:#e76f00;opacity:.5\"></i>detect, with the "
      "bracket that contains the true instant</span><span><i class=\"sw\" "
      "style=\"background:#2a9d4b;opacity:.5\"></i>recover, with its bracket</span><span>┆ "
      "objective target</span></div>\n";
  out += RenderTimelineSvg(m);

  if (!m.annotations.empty()) {
    out += "<h2>Annotations</h2>\n<ol id=\"annotations\">\n";
    for (const auto& a : m.annotations) {
      out += "<li>" +
             E(a.t_s ? fmt::format("+{:.2f}s", *a.t_s)
                     : (a.at_wall.empty() ? std::string("(no time)") : a.at_wall)) +
             (a.author.empty() ? "" : " <b>" + E(a.author) + "</b>") + ": " + E(a.text) + "</li>\n";
    }
    out += "</ol>\n";
  }

  out += "<h2>Faults and evidence</h2>\n";
  if (m.faults.empty()) {
    out += "<p>No fault was applied.</p>\n";
  } else {
    out +=
        "<table id=\"evidence\"><tr><th>fault</th><th>kind</th><th>target</th><th>agent</th>"
        "<th>applied</th><th>reverted</th><th>revert reason</th><th>evidence</th>"
        "<th>problems</th></tr>\n";
    for (const auto& f : m.faults) {
      for (const auto& a : f.agents) {
        std::string ev;
        for (const auto& [k, v] : a.evidence)
          ev += E(k) + " = <b>" + std::to_string(v) + "</b><br>";
        std::string problems = E(a.error);
        if (a.state_unknown)
          problems += (problems.empty() ? "" : "<br>") + std::string("state unknown");
        out += fmt::format(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>"
            "<td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"warn\">{}</td></tr>\n",
            E(f.name), E(f.kind), E(f.target), E(a.agent),
            a.applied_at_s ? fmt::format("+{:.2f}s", *a.applied_at_s) : "—",
            a.reverted_at_s ? fmt::format("+{:.2f}s", *a.reverted_at_s) : "—", E(a.revert_reason),
            ev.empty() ? "none reported" : ev, problems);
      }
    }
    out += "</table>\n";
  }

  if (!m.probes.empty()) {
    out +=
        "<h2>Probes</h2>\n<table id=\"probes\"><tr><th>probe</th><th>ran from</th>"
        "<th>interval</th><th>samples</th><th>ok</th><th>p50</th><th>p90</th><th>p99</th>"
        "<th>max</th></tr>\n";
    for (const auto& p : m.probes) {
      size_t ok = std::count_if(p.samples.begin(), p.samples.end(),
                                [](const SampleRow& s) { return s.ok; });
      // Where it ran: the controller, or each host / workload of its `from:` target with the
      // error bound of that agent's clock mapping (which widens its brackets).
      std::string where = p.from == "controller" ? std::string("controller") : "";
      if (p.from != "controller") {
        where = "<span class=\"from\">from " + E(p.from) + "</span>";
        if (p.ran_on.empty()) where += ": ran on no agent";
        for (const auto& site : p.ran_on) {
          where += fmt::format("<br><span class=\"ran-on\">{} {}</span> (clock ±{:.3f}ms)",
                               site.workload.empty() ? "host" : "in",
                               E(site.workload.empty() ? site.agent : site.workload),
                               site.clock_error_ms);
        }
      }
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{:.1f}ms</td><td class=\"num\">{:.1f}ms</td>"
          "<td class=\"num\">{:.1f}ms</td><td class=\"num\">{:.1f}ms</td></tr>\n",
          E(p.name), where, Human(p.interval_s), p.samples.size(), ok, p.p50_ms, p.p90_ms, p.p99_ms,
          p.max_ms);
    }
    out += "</table>\n";
  }

  if (!m.warnings.empty()) {
    out += "<h2>Warnings</h2>\n<ul id=\"warnings\">\n";
    for (const auto& w : m.warnings) out += "<li class=\"warn\">" + E(w) + "</li>\n";
    out += "</ul>\n";
  }
  out += "<footer>faultline report · run " + E(m.run_id) +
         " · instants are seconds from the run's start (monotonic clock); each detect/recover "
         "bracket runs from the send of the last sample before the change to the answer of the "
         "first sample after it</footer>\n</body>\n</html>\n";
  return out;
}

// html_parts.h: the helpers above, for the other HTML views (trend chart).
std::string_view HtmlReportStyle() { return kStyle; }
double HtmlAxisStep(double span, int max_ticks) { return NiceStep(span, max_ticks); }
std::string HtmlHumanDuration(double seconds) { return Human(seconds); }
const char* HtmlVerdictClass(const std::string& verdict) { return VerdictClass(verdict); }

}  // namespace faultline::report
