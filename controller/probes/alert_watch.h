#pragma once
// AlertWatch: the `prometheus_alert` abort conditions of a run. One background thread polls each
// condition's Prometheus (GET /api/v1/alerts) at the condition's interval and remembers the first
// time a watched alert is seen in state `firing` (a `pending` alert, still inside its `for:`, does
// not count). The engine asks Firing() where it checks its other abort conditions.
//
// A poll that fails (server down, bad answer) does not abort the run: it is kept as LastError()
// for the progress display, and polling goes on. Threading: Start/Stop from the owner's thread;
// Firing and LastError from any thread. The destructor stops the thread.

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/experiment/experiment.h"

namespace faultline::probes {

class AlertWatch {
 public:
  // Watches the conditions of `aborts` that name a prometheus_alert (the others are ignored).
  // Precondition: curl_global_init has run (InitProbes).
  explicit AlertWatch(const std::vector<experiment::AbortCondition>& aborts);
  ~AlertWatch();
  AlertWatch(const AlertWatch&) = delete;
  AlertWatch& operator=(const AlertWatch&) = delete;

  // True when there is at least one alert condition to watch.
  bool empty() const { return conditions_.empty(); }
  // Starts polling (nothing when empty()). Call once.
  void Start();
  // Stops and joins the thread. Idempotent.
  void Stop();

  // "abort condition: Prometheus alert OrdersErrors firing (http://10.77.0.1:9090)" once a
  // watched alert was seen firing; stays set for the rest of the watch.
  std::optional<std::string> Firing() const;
  // The last poll error, if the last poll of some condition failed.
  std::optional<std::string> LastError() const;

 private:
  void Loop();

  std::vector<experiment::AbortCondition> conditions_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                      // guarded by mu_
  std::optional<std::string> firing_;      // guarded by mu_
  std::optional<std::string> last_error_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace faultline::probes
