#include "controller/report/html_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

#include "controller/report/html_parts.h"
#include "controller/report/markup.h"

namespace faultline::report {

namespace {

std::string E(std::string_view s) { return EscapeMarkup(s); }

// A finite, non-negative value for drawing (a hand-edited report may hold anything).
double Clean(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

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

// Distinct fills for the fault windows of different targets.
const char* kTargetColors[] = {"#f4a261", "#9b5de5", "#00bbf9", "#f15bb5", "#8ac926"};

constexpr double kWidth = 1100;
constexpr double kLeft = 190;  // lane labels
constexpr double kRight = 40;
constexpr double kPlot = kWidth - kLeft - kRight;

// Marker labels above the chart are stacked in rows so they do not overlap.
class LabelRows {
 public:
  explicit LabelRows(int rows) : ends_(rows, -1e9) {}
  // The row for a label spanning [x0, x1]; the last row when every row is taken there.
  int Place(double x0, double x1) {
    for (size_t i = 0; i < ends_.size(); ++i) {
      if (x0 > ends_[i] + 6) {
        ends_[i] = x1;
        return static_cast<int>(i);
      }
    }
    ends_.back() = std::max(ends_.back(), x1);
    return static_cast<int>(ends_.size()) - 1;
  }
  int size() const { return static_cast<int>(ends_.size()); }

 private:
  std::vector<double> ends_;
};

class Timeline {
 public:
  explicit Timeline(const ReportModel& m) : m_(m) {
    double end = Clean(m.t_end_s);
    for (const auto& p : m.probes) {
      if (!p.samples.empty())
        end = std::max(end, Clean(p.samples.back().t_s) + Clean(p.interval_s));
    }
    for (const auto& a : m.annotations) {
      if (a.t_s) end = std::max(end, Clean(*a.t_s));
    }
    step_ = NiceStep(std::max(end, 1.0), 12);
    span_ = std::max(step_, std::ceil(end / step_) * step_);
  }

  std::string Render() {
    // Markers first: their labels decide how tall the label band is.
    CollectMarkers();
    LabelRows rows(5);
    for (auto& mk : markers_) {
      double x = X(mk.t);
      double w = 6.2 * static_cast<double>(mk.label.size());
      double x0 = mk.anchor_end ? x - w : x;
      mk.row = rows.Place(x0, x0 + w);
    }
    int used_rows = 0;
    for (const auto& mk : markers_) used_rows = std::max(used_rows, mk.row + 1);
    const double label_h = 16.0 * used_rows + 8;
    double y = label_h;
    std::string body;

    // Fault rows: one per fault per agent, a bar from the apply ack to the revert ack.
    const double chart_top = y;
    std::map<std::string, const char*> color_of;
    for (const auto& f : m_.faults) {
      if (!color_of.count(f.target)) {
        color_of[f.target] = kTargetColors[color_of.size() % std::size(kTargetColors)];
      }
    }
    std::string shading;
    for (const auto& f : m_.faults) {
      for (const auto& a : f.agents) {
        const char* color = color_of[f.target];
        body +=
            fmt::format("<text class=\"lane\" x=\"{:.1f}\" y=\"{:.1f}\">{} @ {}</text>\n",
                        kLeft - 8, y + 13, E(f.name), E(a.workload.empty() ? a.agent : a.workload));
        if (a.applied_at_s) {
          double x0 = X(*a.applied_at_s);
          bool open = !a.reverted_at_s;
          double x1 = X(open ? span_ : *a.reverted_at_s);
          std::string tip = fmt::format("{} ({}) on {}: applied +{:.2f}s, {}", f.name, f.kind,
                                        a.agent, *a.applied_at_s,
                                        open ? std::string("revert NOT confirmed")
                                             : fmt::format("reverted +{:.2f}s", *a.reverted_at_s));
          body += fmt::format(
              "<rect class=\"fault-bar{}\" data-fault=\"{}\" data-agent=\"{}\" x=\"{:.1f}\" "
              "y=\"{:.1f}\" width=\"{:.1f}\" height=\"14\" fill=\"{}\"><title>{}</title></rect>\n",
              open ? " open" : "", E(f.name), E(a.agent), x0, y + 2, std::max(1.0, x1 - x0), color,
              E(tip));
          shading += fmt::format(
              "<rect class=\"fault-window\" x=\"{:.1f}\" y=\"@TOP@\" width=\"{:.1f}\" "
              "height=\"@H@\" fill=\"{}\"/>\n",
              x0, std::max(1.0, x1 - x0), color);
        } else {
          body += fmt::format(
              "<text class=\"small fail-text\" x=\"{:.1f}\" y=\"{:.1f}\">not applied{}</text>\n",
              kLeft + 4, y + 13, a.error.empty() ? "" : ": " + E(a.error));
        }
        y += 18;
      }
    }
    if (!m_.faults.empty()) y += 8;

    // Probe lanes: latency line over a success/failure strip.
    const double lanes_top = y;
    for (const auto& p : m_.probes) y = ProbeLane(p, y, &body) + 10;

    // Objective rows: the measured time to recover as a bar from its window's start.
    for (const auto& o : m_.objectives) y = ObjectiveRow(o, y, &body);
    const double chart_bottom = y;

    // Fault windows shade every probe lane.
    ReplaceAll(&shading, "@TOP@", fmt::format("{:.1f}", lanes_top));
    ReplaceAll(&shading, "@H@", fmt::format("{:.1f}", std::max(0.0, chart_bottom - lanes_top)));

    std::string out;
    const double height = chart_bottom + 42;
    out += fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" viewBox=\"0 0 {:.0f} {:.0f}\" "
        "width=\"{:.0f}\" height=\"{:.0f}\" role=\"img\" aria-label=\"timeline of run {}\">\n",
        kWidth, height, kWidth, height, E(m_.run_id));
    out += "<g class=\"shading\">\n" + shading + "</g>\n";
    out += Grid(chart_top, chart_bottom);
    out += body;
    out += MarkerLines(label_h, chart_bottom);
    out += Axis(chart_bottom);
    out += "</svg>\n";
    return out;
  }

 private:
  struct Marker {
    double t;
    std::optional<std::pair<double, double>> band;  // [lo, hi] instants: where the truth lies
    std::string cls;  // CSS class: inject, revert, detect, recover, target, note
    std::string label;
    std::string title;
    bool anchor_end = false;
    int row = 0;
  };

  double X(double t) const { return kLeft + std::clamp(t, 0.0, span_) / span_ * kPlot; }

  static void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
    for (size_t pos = 0; (pos = s->find(from, pos)) != std::string::npos; pos += to.size()) {
      s->replace(pos, from.size(), to);
    }
  }

  void CollectMarkers() {
    if (m_.t_inject_s) {
      markers_.push_back({*m_.t_inject_s, std::nullopt, "inject", "fault in effect",
                          fmt::format("fault in effect on every target at +{:.2f}s (last apply "
                                      "ack)",
                                      *m_.t_inject_s)});
    }
    if (m_.t_revert_s) {
      markers_.push_back(
          {*m_.t_revert_s, std::nullopt, "revert", "reverted",
           fmt::format("every fault reverted at +{:.2f}s (last revert ack)", *m_.t_revert_s)});
    }
    for (const auto& o : m_.objectives) {
      std::optional<double> base = o.after == "revert" ? m_.t_revert_s : m_.t_inject_s;
      if (!base) continue;
      // The bracket that contains the truth; a report from before brackets has only ± its
      // uncertainty.
      auto band = [&](double point, const std::optional<TimeBracket>& b) {
        if (b) return std::make_pair(*base + b->lo_s, *base + b->hi_s);
        double u = Clean(o.uncertainty_s);
        return std::make_pair(*base + point - u, *base + point + u);
      };
      auto in_words = [&](double point, const std::optional<TimeBracket>& b) {
        return b ? fmt::format("{:.2f}s after {} (truth in [{:.2f}s, {:.2f}s])", point, o.after,
                               b->lo_s, b->hi_s)
                 : fmt::format("{:.2f}s ± {:.2f}s after {}", point, Clean(o.uncertainty_s),
                               o.after);
      };
      if (o.time_to_detect_s && !o.no_impact) {
        double t = *base + *o.time_to_detect_s;
        markers_.push_back(
            {t, band(*o.time_to_detect_s, o.detect_bracket), "detect", "detect " + o.name,
             o.name + ": impact detected " + in_words(*o.time_to_detect_s, o.detect_bracket)});
      }
      if (o.time_to_recover_s && !o.no_impact) {
        double t = *base + *o.time_to_recover_s;
        markers_.push_back(
            {t, band(*o.time_to_recover_s, o.recover_bracket), "recover", "recover " + o.name,
             o.name + ": recovered " + in_words(*o.time_to_recover_s, o.recover_bracket)});
      }
      double target = *base + Clean(o.target_s);
      bool off_chart = target > span_;
      std::string label = fmt::format("{} target {} {}{}", o.name, Human(o.target_s), o.verdict,
                                      off_chart ? " →" : "");
      markers_.push_back({std::min(target, span_), std::nullopt,
                          std::string("target ") + VerdictClass(o.verdict), label,
                          fmt::format("objective {}: recover within {} of {} (at +{:.2f}s){}: {}",
                                      o.name, Human(o.target_s), o.after, target,
                                      off_chart ? ", beyond the end of the run" : "", o.verdict),
                          /*anchor_end=*/true});
    }
    int n = 0;
    for (const auto& a : m_.annotations) {
      ++n;
      if (!a.t_s) continue;
      markers_.push_back({*a.t_s, std::nullopt, "note", fmt::format("[{}]", n),
                          (a.author.empty() ? "" : a.author + ": ") + a.text});
    }
  }

  std::string Grid(double top, double bottom) const {
    std::string out = "<g class=\"grid\">\n";
    for (double t = 0; t <= span_ + 1e-9; t += step_) {
      out += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n",
                         X(t), top, bottom);
    }
    return out + "</g>\n";
  }

  std::string Axis(double y) const {
    std::string out = "<g class=\"axis\" id=\"time-axis\">\n";
    out += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", kLeft,
                       y, kLeft + kPlot, y);
    for (double t = 0; t <= span_ + 1e-9; t += step_) {
      out += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/><text x=\"{0:.1f}\" "
          "y=\"{3:.1f}\" text-anchor=\"middle\">+{4}</text>\n",
          X(t), y, y + 5, y + 18, t == 0 ? std::string("0") : Human(t));
    }
    out += fmt::format(
        "<text class=\"small\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">seconds since "
        "the run started</text>\n",
        kLeft + kPlot / 2, y + 32);
    return out + "</g>\n";
  }

  std::string MarkerLines(double label_h, double bottom) const {
    std::string out = "<g class=\"markers\">\n";
    for (const auto& mk : markers_) {
      double x = X(mk.t);
      double label_y = 14.0 + 16.0 * mk.row;
      out += fmt::format("<g class=\"marker {}\"><title>{}</title>\n", mk.cls, E(mk.title));
      if (mk.band && mk.band->second > mk.band->first) {
        double x0 = X(mk.band->first), x1 = X(mk.band->second);
        out += fmt::format(
            "<rect class=\"band\" data-lo=\"{:.3f}\" data-hi=\"{:.3f}\" x=\"{:.1f}\" "
            "y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/>\n",
            mk.band->first, mk.band->second, x0, label_h, std::max(1.0, x1 - x0), bottom - label_h);
        // The bracket's ends, drawn as edges so a narrow bracket still shows where it lies.
        out += fmt::format(
            "<path class=\"bracket\" d=\"M{0:.1f},{2:.1f}h3M{0:.1f},{2:.1f}V{3:.1f}h3"
            "M{1:.1f},{2:.1f}h-3M{1:.1f},{2:.1f}V{3:.1f}h-3\"/>\n",
            x0, x1, label_h, bottom);
      }
      out += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n"
          "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"{5}\">{6}</text>\n</g>\n",
          x, label_y + 3, bottom, mk.anchor_end ? x - 3 : x + 3, label_y,
          mk.anchor_end ? "end" : "start", E(mk.label));
    }
    return out + "</g>\n";
  }

  // Returns the y below the lane.
  double ProbeLane(const ProbeRow& p, double y, std::string* out) const {
    const double plot_h = 90, strip_h = 12;
    double max_ms = 0;
    for (const auto& s : p.samples) max_ms = std::max(max_ms, Clean(s.latency_ms));
    double ms_step = NiceStep(std::max(max_ms, 1.0), 3);
    double top_ms = std::max(ms_step, std::ceil(max_ms / ms_step) * ms_step);
    auto Y = [&](double ms) { return y + plot_h - Clean(ms) / top_ms * plot_h; };

    *out += fmt::format("<g class=\"probe\" data-probe=\"{}\">\n", E(p.name));
    *out += fmt::format(
        "<text class=\"lane\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n"
        "<text class=\"small lane\" x=\"{:.1f}\" y=\"{:.1f}\">latency (ms)</text>\n",
        kLeft - 48, y + 12, E(p.name), kLeft - 48, y + 26);
    // y axis
    *out += fmt::format(
        "<g class=\"axis\"><line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" "
        "y2=\"{2:.1f}\"/>\n",
        kLeft, y, y + plot_h);
    for (double ms = 0; ms <= top_ms + 1e-9; ms += ms_step) {
      *out += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/><text x=\"{3:.1f}\" "
          "y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
          kLeft - 4, Y(ms), kLeft, kLeft - 6, Y(ms) + 4, fmt::format("{:g}", ms));
    }
    *out += "</g>\n";
    // Latency of every sample, failed ones included (a timeout shows as a spike).
    if (!p.samples.empty()) {
      std::string points;
      for (const auto& s : p.samples) {
        points += fmt::format("{:.1f},{:.1f} ", X(s.t_s), Y(s.latency_ms));
      }
      points.pop_back();
      *out += "<polyline class=\"latency\" points=\"" + points + "\"/>\n";
    }
    // Success/failure strip: consecutive samples of one outcome merged into one mark.
    double sy = y + plot_h + 4;
    int ok_count = 0, fail_count = 0;
    for (size_t i = 0; i < p.samples.size();) {
      size_t j = i;
      while (j < p.samples.size() && p.samples[j].ok == p.samples[i].ok) ++j;
      bool ok = p.samples[i].ok;
      (ok ? ok_count : fail_count) += static_cast<int>(j - i);
      double t0 = p.samples[i].t_s;
      double t1 = j < p.samples.size() ? p.samples[j].t_s : p.samples[j - 1].t_s + p.interval_s;
      std::string tip = fmt::format("{} {} sample{} from +{:.2f}s to +{:.2f}s{}", j - i,
                                    ok ? "successful" : "failed", j - i == 1 ? "" : "s", t0, t1,
                                    ok ? "" : ": " + p.samples[i].detail);
      *out += fmt::format(
          "<rect class=\"sample {}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
          "height=\"{:.0f}\"><title>{}</title></rect>\n",
          ok ? "ok" : "failed", X(t0), sy, std::max(1.0, X(t1) - X(t0)), strip_h, E(tip));
      i = j;
    }
    *out += fmt::format(
        "<text class=\"small lane\" x=\"{:.1f}\" y=\"{:.1f}\">{} ok / {} failed</text>\n",
        kLeft - 8, sy + 10, ok_count, fail_count);
    *out += "</g>\n";
    return sy + strip_h;
  }

  double ObjectiveRow(const report::ObjectiveRow& o, double y, std::string* out) const {
    std::optional<double> base = o.after == "revert" ? m_.t_revert_s : m_.t_inject_s;
    const char* cls = VerdictClass(o.verdict);
    *out += fmt::format("<g class=\"objective {}\" data-objective=\"{}\" data-verdict=\"{}\">\n",
                        cls, E(o.name), E(o.verdict));
    *out += fmt::format(
        "<text class=\"lane\" x=\"{:.1f}\" y=\"{:.1f}\">{} <tspan class=\"verdict-{}\">{}</tspan>"
        "</text>\n",
        kLeft - 8, y + 14, E(o.name), cls, E(o.verdict));
    if (base) {
      double x0 = X(*base);
      std::string what;
      if (o.no_impact) {
        what = "no impact observed";
      } else if (o.time_to_recover_s) {
        double x1 = X(*base + *o.time_to_recover_s);
        *out += fmt::format(
            "<rect class=\"recover-bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
            "height=\"10\"/>\n",
            x0, y + 5, std::max(1.0, x1 - x0));
        what = o.recover_bracket
                   ? fmt::format("recovered in {}, truth in [{}, {}] (target {}){}",
                                 Secs(*o.time_to_recover_s), Secs(o.recover_bracket->lo_s),
                                 Secs(o.recover_bracket->hi_s), Human(o.target_s),
                                 o.inconclusive ? ": inconclusive" : "")
                   : fmt::format("recovered in {} ± {} (target {})", Secs(*o.time_to_recover_s),
                                 Secs(o.uncertainty_s), Human(o.target_s));
      } else {
        // Not recovered: the outage lasted the whole measured window.
        std::optional<double> end =
            o.after == "revert" ? std::optional<double>(m_.t_end_s) : m_.t_revert_start_s;
        double x1 = X(end.value_or(m_.t_end_s));
        *out += fmt::format(
            "<rect class=\"unrecovered-bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
            "height=\"10\"/>\n",
            x0, y + 5, std::max(1.0, x1 - x0));
        what = fmt::format("not recovered within the window (target {})", Human(o.target_s));
      }
      // The caption starts at the window's start, or ends at the plot's edge when it would not fit.
      double room = kLeft + kPlot - x0;
      bool fits = room > 6.0 * static_cast<double>(what.size()) + 8;
      *out += fmt::format(
          "<text class=\"small\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\">{}</text>\n",
          fits ? x0 + 4 : kLeft + kPlot - 2, y + 25, fits ? "start" : "end", E(what));
    }
    *out += "<title>" + E(o.name + " " + o.verdict + ": " + o.note) + "</title></g>\n";
    return y + 30;
  }

  const ReportModel& m_;
  double step_ = 1;
  double span_ = 1;
  std::vector<Marker> markers_;
};

constexpr std::string_view kStyle = R"(
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
svg{font-size:11px;background:#fcfcfd;border:1px solid #e3e7eb;border-radius:6px}
svg text{fill:#1d2733}svg .lane{text-anchor:end;font-weight:600}svg .small{font-size:10px;font-weight:400}
svg .axis line{stroke:#77818b}svg .axis text{fill:#55606b}svg .grid line{stroke:#eef1f4}
svg .fault-window{opacity:.16}svg .fault-bar{opacity:.85}svg .fault-bar.open{stroke:#c62828;stroke-dasharray:4 2}
svg .latency{fill:none;stroke:#1f6feb;stroke-width:1.3}
svg .sample.ok{fill:#2a9d4b}svg .sample.failed{fill:#d62828}
svg .marker line{stroke-width:1.5}svg .marker .band{opacity:.18}
svg .marker .bracket{fill:none;stroke-width:1.2}svg .detect .bracket{stroke:#e76f00}
svg .recover .bracket{stroke:#2a9d4b}
svg .inject line{stroke:#1d2733}svg .revert line{stroke:#1d2733;stroke-dasharray:6 3}
svg .detect line{stroke:#e76f00}svg .detect .band{fill:#e76f00}svg .detect text{fill:#b35600}
svg .recover line{stroke:#2a9d4b}svg .recover .band{fill:#2a9d4b}svg .recover text{fill:#1e7a38}
svg .target line{stroke-dasharray:2 3;stroke-width:2}svg .target.pass line{stroke:#2a9d4b}
svg .target.fail line,svg .target.error line{stroke:#c62828}svg .target.fail text{fill:#c62828}
svg .note line{stroke:#7b2cbf;stroke-dasharray:1 2}svg .note text{fill:#7b2cbf;font-weight:700}
svg .objective.pass .recover-bar{fill:#2a9d4b}svg .objective.fail .recover-bar{fill:#c62828}
svg .objective .recover-bar{fill:#5f6b76}
svg .unrecovered-bar{fill:#c62828;opacity:.55}
svg .verdict-pass{fill:#2a9d4b}svg .verdict-fail{fill:#c62828}svg .verdict-error{fill:#5f6b76}
svg .fail-text{fill:#c62828}
.legend span{display:inline-block;margin-right:16px;font-size:12px}
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
  out += Timeline(m).Render();

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
        "<h2>Probes</h2>\n<table id=\"probes\"><tr><th>probe</th><th>interval</th><th>samples"
        "</th><th>ok</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\n";
    for (const auto& p : m.probes) {
      size_t ok = std::count_if(p.samples.begin(), p.samples.end(),
                                [](const SampleRow& s) { return s.ok; });
      out += fmt::format(
          "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{:.1f}ms</td><td class=\"num\">{:.1f}ms</td>"
          "<td class=\"num\">{:.1f}ms</td><td class=\"num\">{:.1f}ms</td></tr>\n",
          E(p.name), Human(p.interval_s), p.samples.size(), ok, p.p50_ms, p.p90_ms, p.p99_ms,
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

}  // namespace faultline::report
