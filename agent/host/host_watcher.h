#pragma once
// HostWatcher: keeps a fault's peer addresses in step with its host names while the fault is
// active. Network and dependency faults both name peers by host; both resolve them at apply time
// and then re-resolve them on a thread of their own, replacing the nft peer sets when the answer
// changes. This class is that loop, once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace faultline::agent::host {

// Host names → numeric addresses (sorted, unique); ResolveHostAddresses in production.
using HostResolver = std::function<std::vector<std::string>(const std::vector<std::string>& hosts)>;

class HostWatcher {
 public:
  // Installs a new address set (e.g. replaces a table's peer sets). Called on the watcher's
  // thread, never concurrently with itself. A non-OK result keeps the previous set as the current
  // one, so the change is tried again at the next refresh.
  using ApplyFn = std::function<Status(const std::vector<std::string>& addresses)>;

  // The interval used when a fault leaves resolve_interval_ms at 0.
  static constexpr std::chrono::milliseconds kDefaultInterval{1000};

  // `hosts` may be empty (then Start runs no thread and the watcher only reports nothing).
  // `interval` 0 means kDefaultInterval. `label` names the fault in log lines
  // ("network fault x").
  HostWatcher(std::vector<std::string> hosts, std::chrono::milliseconds interval, std::string label,
              HostResolver resolver);
  // Stops the thread (Stop).
  ~HostWatcher();
  HostWatcher(const HostWatcher&) = delete;
  HostWatcher& operator=(const HostWatcher&) = delete;

  // Resolves the hosts once, now (blocking), records the answer as the current set and returns
  // it. Call before Start, to build the fault's initial rules. Empty when nothing resolved.
  std::vector<std::string> ResolveInitial();

  // Starts re-resolving every interval: a non-empty answer that differs from the current set is
  // handed to `apply`, and becomes current when it returns OK. An empty answer (nothing
  // resolved) keeps faulting the last known addresses. No thread when there are no hosts.
  // Call at most once.
  void Start(ApplyFn apply);

  // One refresh, on the calling thread (what the thread does every interval; before Start, a
  // changed answer becomes current without any apply). For tests: must not overlap the
  // thread's own refresh (tests that also Start use a long interval).
  void RefreshOnce();

  // Stops the thread without waiting for the interval to end (a resolution in progress finishes
  // first). Idempotent; thread-safe; a later Start does nothing.
  void Stop();

  // The current address set.
  std::vector<std::string> addresses() const;
  uint64_t resolutions() const { return resolutions_.load(); }
  uint64_t changes() const { return changes_.load(); }

  // Adds peer_addresses, resolutions and resolution_changes to a fault's evidence when the fault
  // names hosts (nothing otherwise).
  void AddEvidence(std::map<std::string, uint64_t>* evidence) const;

 private:
  const std::vector<std::string> hosts_;
  const std::chrono::milliseconds interval_;
  const std::string label_;
  const HostResolver resolver_;
  ApplyFn apply_;  // set by Start before the thread runs

  mutable std::mutex addresses_mu_;
  std::vector<std::string> addresses_;  // guarded by addresses_mu_
  std::atomic<uint64_t> resolutions_{0};
  std::atomic<uint64_t> changes_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;  // guarded by stop_mu_
  std::thread thread_;
};

}  // namespace faultline::agent::host
