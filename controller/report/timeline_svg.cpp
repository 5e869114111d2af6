#include "controller/report/timeline_svg.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "controller/report/html_parts.h"
#include "controller/report/markup.h"

namespace faultline::report {

namespace {

std::string E(std::string_view s) { return EscapeMarkup(s); }

// A finite, non-negative value for drawing (a hand-edited report may hold anything).
double Clean(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

std::string Secs(double s) { return fmt::format("{:.2f}s", s); }

std::string Human(double s) { return HtmlHumanDuration(s); }

double NiceStep(double span, int max_ticks) { return HtmlAxisStep(span, max_ticks); }

const char* VerdictClass(const std::string& v) { return HtmlVerdictClass(v); }

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

}  // namespace

std::string RenderTimelineSvg(const ReportModel& report) { return Timeline(report).Render(); }

}  // namespace faultline::report
