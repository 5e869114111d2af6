#include "controller/report/live_progress.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "controller/engine/recovery_meter.h"
#include "controller/report/markup.h"

namespace faultline::report {

using experiment::Objective;

namespace {

std::string Secs(Duration d) { return fmt::format("{:.1f}s", ToSeconds(d)); }

constexpr const char* kBold = "\033[1m";
constexpr const char* kDim = "\033[2m";
constexpr const char* kGreen = "\033[32m";
constexpr const char* kRed = "\033[31m";
constexpr const char* kReset = "\033[0m";

}  // namespace

LiveProgress::LiveProgress(const experiment::Experiment& experiment, MonoTime origin,
                           std::FILE* out, bool tty)
    : exp_(experiment), origin_(origin), out_(out), tty_(tty) {
  for (const auto& p : exp_.probes) probes_[p.name].interval = p.interval;
}

void LiveProgress::OnEvent(const engine::ProgressEvent& e) {
  std::lock_guard lock(mu_);
  if (finished_) return;
  phase_ = e.phase;
  // The last apply ack puts the fault in effect everywhere (t_inject); the last revert ack ends it.
  if (e.phase == "inject" && e.message.find(": FAILED: ") == std::string::npos) inject_at_ = e.at;
  if (e.phase == "revert") revert_at_ = e.at;
  if (tty_) EraseLocked();
  std::fprintf(out_, "[%8.2fs] %s%-8s%s %s\n", ToSeconds(e.at - origin_), tty_ ? kBold : "",
               StripTerminalControls(e.phase, false).c_str(), tty_ ? kReset : "",
               StripTerminalControls(e.message, false).c_str());
  if (tty_ && e.phase != "verdict") DrawLocked(e.at);
  std::fflush(out_);
}

void LiveProgress::OnSample(const std::string& probe, const engine::ProbeSample& s) {
  std::lock_guard lock(mu_);
  auto& st = probes_[probe];
  // Samples arrive in answer order (open-loop probes); the measurement wants send order.
  auto at = std::upper_bound(st.samples.begin(), st.samples.end(), s.sample.at,
                             [](MonoTime t, const engine::Sample& x) { return t < x.at; });
  st.samples.insert(at, s.sample);
  st.last_detail = s.detail;
  st.last = s.sample;
  (s.sample.ok ? st.ok : st.failed)++;
}

void LiveProgress::Redraw(MonoTime now) {
  std::lock_guard lock(mu_);
  if (!tty_ || finished_) return;
  EraseLocked();
  DrawLocked(now);
  std::fflush(out_);
}

void LiveProgress::Finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  if (tty_) EraseLocked();
  finished_ = true;
  std::fflush(out_);
}

std::vector<std::string> LiveProgress::StatusLines(MonoTime now) const {
  std::lock_guard lock(mu_);
  return StatusLinesLocked(now);
}

std::vector<std::string> LiveProgress::StatusLinesLocked(MonoTime now) const {
  std::vector<std::string> lines;
  std::string head =
      fmt::format("{} · {} elapsed", StripTerminalControls(phase_, false), Secs(now - origin_));
  if (inject_at_) {
    MonoTime until = revert_at_.value_or(now);
    head += fmt::format(" · fault in effect {}{}", Secs(until - *inject_at_),
                        revert_at_ ? " (reverted)" : "");
  }
  lines.push_back(head);
  for (const auto& o : exp_.objectives) {
    bool inject = o.after == Objective::Phase::kInject;
    std::optional<MonoTime> start = inject ? inject_at_ : revert_at_;
    std::string status;
    if (!start) {
      status = fmt::format("waiting for the {} · {}", inject ? "fault" : "revert",
                           o.kind == Objective::Kind::kRecover
                               ? "target " + FormatDuration(o.recover_within)
                               : std::string(ObjectiveKindName(o.kind)));
    } else {
      MonoTime end = inject && revert_at_ ? std::max(*start, *revert_at_) : now;
      const auto& st = probes_.at(o.probe);
      auto fig = engine::MeasureRecovery(st.samples, {*start, end, o.stable_for, st.interval});
      Duration elapsed = end - *start;
      if (o.kind == Objective::Kind::kDetect) {
        status = fig.time_to_detect
                     ? fmt::format("detected +{} · target {}", Secs(*fig.time_to_detect),
                                   FormatDuration(o.detect_within))
                     : fmt::format("not detected yet · {} of {} target", Secs(elapsed),
                                   FormatDuration(o.detect_within));
      } else if (o.kind != Objective::Kind::kRecover) {
        // Availability and latency are judged on the whole fault window, at the end.
        status = fmt::format("{} · {} samples so far, {} failed", ObjectiveKindName(o.kind),
                             fig.samples, fig.failures);
      } else if (fig.time_to_recover && !fig.no_impact) {
        bool met = *fig.time_to_recover <= o.recover_within;
        status = fmt::format("detected +{} · recovered +{} · target {} · {}",
                             Secs(*fig.time_to_detect), Secs(*fig.time_to_recover),
                             FormatDuration(o.recover_within), met ? "met" : "MISSED");
      } else if (fig.time_to_detect) {
        bool over = elapsed > o.recover_within;
        status = fmt::format("detected +{} · not recovered · {} of {} target{}",
                             Secs(*fig.time_to_detect), Secs(elapsed),
                             FormatDuration(o.recover_within), over ? " · MISSED" : "");
      } else {
        status = fmt::format("no impact yet · {} of {} target", Secs(elapsed),
                             FormatDuration(o.recover_within));
      }
    }
    lines.push_back(fmt::format("  {:<24} {}", StripTerminalControls(o.name, false), status));
  }
  for (const auto& p : exp_.probes) {
    const auto& st = probes_.at(p.name);
    std::string last = "no sample yet";
    if (!st.samples.empty()) {
      const auto& s = st.last;
      last =
          s.ok ? fmt::format("ok {:.1f}ms", ToSeconds(s.latency) * 1000) : "FAIL " + st.last_detail;
    }
    // Probe details come from the probed service and from agents: never let them drive the tty.
    lines.push_back(fmt::format("  {:<24} {} · {} ok / {} failed",
                                StripTerminalControls(p.name, false),
                                StripTerminalControls(last, false), st.ok, st.failed));
  }
  return lines;
}

void LiveProgress::EraseLocked() {
  // Cursor to the start of the block's first line, then clear to the end of the screen.
  if (drawn_lines_ > 0) std::fprintf(out_, "\033[%dF\033[J", drawn_lines_);
  drawn_lines_ = 0;
}

void LiveProgress::DrawLocked(MonoTime now) {
  auto lines = StatusLinesLocked(now);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = lines[i];
    if (i == 0) {
      line = std::string(kBold) + line + kReset;
    } else if (line.find("MISSED") != std::string::npos ||
               line.find(" FAIL ") != std::string::npos) {
      line = kRed + line + kReset;
    } else if (line.find(" · met") != std::string::npos) {
      line = kGreen + line + kReset;
    } else {
      line = kDim + line + kReset;
    }
    // Never wrap: a wrapped line would break the cursor arithmetic of the next redraw.
    std::fprintf(out_, "\033[?7l%s\033[?7h\n", line.c_str());
  }
  drawn_lines_ = static_cast<int>(lines.size());
}

}  // namespace faultline::report
