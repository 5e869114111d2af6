#include "controller/probes/alert_watch.h"

#include <algorithm>
#include <chrono>

#include "controller/probes/prometheus_client.h"

namespace faultline::probes {

using Steady = std::chrono::steady_clock;

// The request timeout of one poll: the poll interval, at least 1 s (a loaded server is not an
// error) and at most 5 s (a stop is never delayed long by a hung server).
constexpr Duration kMinPollTimeout = std::chrono::seconds(1);
constexpr Duration kMaxPollTimeout = std::chrono::seconds(5);

AlertWatch::AlertWatch(const std::vector<experiment::AbortCondition>& aborts) {
  for (const auto& a : aborts) {
    if (!a.prometheus_alert.empty()) conditions_.push_back(a);
  }
}

AlertWatch::~AlertWatch() { Stop(); }

void AlertWatch::Start() {
  if (conditions_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void AlertWatch::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> AlertWatch::Firing() const {
  std::lock_guard lock(mu_);
  return firing_;
}

std::optional<std::string> AlertWatch::LastError() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void AlertWatch::Loop() {
  std::vector<Steady::time_point> next(conditions_.size(), Steady::now());
  while (true) {
    Steady::time_point soonest = Steady::time_point::max();
    for (size_t i = 0; i < conditions_.size(); ++i) {
      const auto& c = conditions_[i];
      if (Steady::now() < next[i]) {
        soonest = std::min(soonest, next[i]);
        continue;
      }
      PrometheusClient client(c.prometheus_url,
                              std::clamp(c.alert_interval, kMinPollTimeout, kMaxPollTimeout));
      auto alerts = client.Alerts();
      std::lock_guard lock(mu_);
      if (!alerts.ok()) {
        last_error_ = "alert " + c.prometheus_alert + ": " + alerts.status().message();
      } else {
        last_error_.reset();
        for (const PromAlert& a : *alerts) {
          if (a.name == c.prometheus_alert && a.state == "firing" && !firing_) {
            firing_ = "abort condition: Prometheus alert " + c.prometheus_alert + " firing (" +
                      c.prometheus_url + ")";
          }
        }
      }
      // Checked after recording: every started watch records at least its first poll.
      if (stop_) return;
      next[i] = Steady::now() + c.alert_interval;
      soonest = std::min(soonest, next[i]);
    }
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, soonest, [&] { return stop_; });
    if (stop_) return;
  }
}

}  // namespace faultline::probes
