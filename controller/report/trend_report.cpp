#include "controller/report/trend_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "controller/report/html_parts.h"
#include "controller/report/markup.h"

namespace faultline::report {

using json = nlohmann::json;

namespace {

std::string E(std::string_view s) { return EscapeMarkup(s); }
std::string S(std::string_view s) { return StripTerminalControls(s, false); }

double Finite(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

const char* DotClass(const std::string& verdict) {
  if (verdict == "PASS") return "verdict-pass";
  if (verdict == "FAIL") return "verdict-fail";
  return "verdict-error";
}

constexpr double kWidth = 900, kHeight = 260, kLeft = 70, kRight = 30, kTop = 20, kBottom = 60;

}  // namespace

std::string RenderTrendSvg(const TrendSeries& s) {
  double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  double ymax = Finite(s.target_s);
  for (const auto& p : s.points) {
    if (p.recover) ymax = std::max(ymax, Finite(p.recover->hi));
  }
  if (ymax <= 0) ymax = 1;
  double step = HtmlAxisStep(ymax, 5);
  ymax = std::ceil(ymax / step) * step;
  auto y = [&](double v) { return kTop + plot_h - Finite(v) / ymax * plot_h; };
  size_t n = s.points.size();
  auto x = [&](size_t i) { return kLeft + plot_w * (static_cast<double>(i) + 0.5) / n; };
  std::string out = fmt::format(
      "<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" role=\"img\"><title>time to recover of {2}, per run</title>\n",
      kWidth, kHeight, E(s.objective));
  out += "<g class=\"grid axis\">";
  for (double v = 0; v <= ymax + step / 2; v += step) {
    out += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/><text x=\"{:.1f}\" "
        "y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
        kLeft, kWidth - kRight, y(v), y(v), kLeft - 6, y(v) + 4, E(HtmlHumanDuration(v)));
  }
  out += "</g>\n";
  if (s.target_s > 0) {
    out += fmt::format(
        "<g class=\"target fail\"><line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\">target {}</text></g>\n",
        kLeft, kWidth - kRight, y(s.target_s), y(s.target_s), kLeft + 4, y(s.target_s) - 4,
        E(HtmlHumanDuration(s.target_s)));
  }
  for (size_t i = 0; i < n; ++i) {
    const auto& p = s.points[i];
    std::string title =
        fmt::format("run {} ({}) {}: {}", p.run_id, p.started_at, p.verdict,
                    p.recover ? fmt::format("{:.2f}s in [{:.2f}, {:.2f}]", *p.time_to_recover_s,
                                            p.recover->lo, p.recover->hi)
                              : std::string("not recovered"));
    out +=
        fmt::format("<g class=\"point\" data-run=\"{}\"><title>{}</title>", E(p.run_id), E(title));
    if (p.recover) {
      out += fmt::format(
          "<line class=\"bracket\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" "
          "stroke=\"#1d2733\" stroke-width=\"2\"/>"
          "<line x1=\"{3:.1f}\" x2=\"{4:.1f}\" y1=\"{1:.1f}\" y2=\"{1:.1f}\" stroke=\"#1d2733\"/>"
          "<line x1=\"{3:.1f}\" x2=\"{4:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#1d2733\"/>"
          "<circle class=\"{5}\" cx=\"{0:.1f}\" cy=\"{6:.1f}\" r=\"4\"/>",
          x(i), y(p.recover->lo), y(p.recover->hi), x(i) - 5, x(i) + 5, DotClass(p.verdict),
          y(*p.time_to_recover_s));
    } else {
      double cx = x(i), cy = kTop + 8;
      out += fmt::format(
          "<g class=\"unrecovered\"><line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" "
          "stroke=\"#c62828\" stroke-width=\"2\"/><line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" "
          "y2=\"{:.1f}\" stroke=\"#c62828\" stroke-width=\"2\"/></g>",
          cx - 5, cx + 5, cy - 5, cy + 5, cx - 5, cx + 5, cy + 5, cy - 5);
    }
    out += fmt::format(
        "<text class=\"small\" x=\"{0:.1f}\" y=\"{1:.1f}\" text-anchor=\"end\" "
        "transform=\"rotate(-35 {0:.1f} {1:.1f})\">{2}</text></g>\n",
        x(i), kHeight - kBottom + 14,
        E(p.started_at.substr(0, std::min<size_t>(16, p.started_at.size()))));
  }
  out += "</svg>\n";
  return out;
}

Trend BuildTrend(const std::string& experiment, const std::vector<ReportModel>& runs) {
  Trend t;
  t.experiment = experiment;
  if (runs.empty()) return t;
  for (const auto& o : runs.back().objectives) {
    TrendSeries s;
    s.objective = o.name;
    s.after = o.after;
    s.target_s = o.target_s;
    for (const auto& r : runs) {
      for (const auto& ro : r.objectives) {
        if (ro.name != o.name) continue;
        s.points.push_back({r.run_id, r.started_at, r.verdict, ro.verdict, ro.time_to_recover_s,
                            RecoveryBracket(ro)});
        break;
      }
    }
    t.series.push_back(std::move(s));
  }
  return t;
}

std::string RenderTrendText(const Trend& t) {
  std::string out = fmt::format(
      "Time to recover of {} over time (oldest first; [lo, hi] is the "
      "bracket that holds the true instant)\n",
      S(t.experiment));
  if (t.series.empty()) out += "no recorded run with a report\n";
  for (const auto& s : t.series) {
    out += fmt::format("\n{} (after {}, target {:.2f}s)\n", S(s.objective), S(s.after), s.target_s);
    out += fmt::format("  {:<14} {:<24} {:<8} {}\n", "RUN", "STARTED (UTC)", "VERDICT",
                       "TIME TO RECOVER [LO, HI]");
    for (const auto& p : s.points) {
      std::string v = p.recover ? fmt::format("{:.2f}s [{:.2f}, {:.2f}]", *p.time_to_recover_s,
                                              p.recover->lo, p.recover->hi)
                                : std::string("not recovered");
      out +=
          fmt::format("  {:<14} {:<24} {:<8} {}\n", S(p.run_id), S(p.started_at), S(p.verdict), v);
    }
  }
  return out;
}

std::string RenderTrendJson(const Trend& t) {
  json j{{"experiment", t.experiment}, {"objectives", json::array()}};
  for (const auto& s : t.series) {
    json pts = json::array();
    for (const auto& p : s.points) {
      pts.push_back(
          {{"run_id", p.run_id},
           {"started_at", p.started_at},
           {"run_verdict", p.run_verdict},
           {"verdict", p.verdict},
           {"time_to_recover_s", p.time_to_recover_s ? json(*p.time_to_recover_s) : json(nullptr)},
           {"recover_lo_s", p.recover ? json(p.recover->lo) : json(nullptr)},
           {"recover_hi_s", p.recover ? json(p.recover->hi) : json(nullptr)}});
    }
    j["objectives"].push_back({{"name", s.objective},
                               {"after", s.after},
                               {"target_s", s.target_s},
                               {"points", std::move(pts)}});
  }
  return j.dump(2) + "\n";
}

std::string RenderTrendHtml(const Trend& t) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + E(t.experiment) + " — time to recover over time</title>\n<style>";
  out += HtmlReportStyle();
  out += "</style>\n</head>\n<body>\n<h1>" + E(t.experiment) + "</h1>\n";
  out +=
      "<p class=\"meta\">Time to recover per run, oldest first. The bar is the bracket that "
      "holds the true recovery instant; the dot is the measured value (green PASS, red FAIL); "
      "a cross marks a run that did not recover.</p>\n";
  if (t.series.empty()) out += "<p>No recorded run with a report.</p>\n";
  for (const auto& s : t.series) {
    out +=
        "<h2>" + E(s.objective) + " <span class=\"meta\">(after " + E(s.after) + ")</span></h2>\n";
    out += RenderTrendSvg(s);
  }
  out += "<footer>faultline history --trend</footer>\n</body>\n</html>\n";
  return out;
}

}  // namespace faultline::report
