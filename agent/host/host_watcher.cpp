#include "agent/host/host_watcher.h"

#include <spdlog/spdlog.h>

namespace faultline::agent::host {

HostWatcher::HostWatcher(std::vector<std::string> hosts, std::chrono::milliseconds interval,
                         std::string label, HostResolver resolver)
    : hosts_(std::move(hosts)),
      interval_(interval.count() > 0 ? interval : kDefaultInterval),
      label_(std::move(label)),
      resolver_(std::move(resolver)) {}

HostWatcher::~HostWatcher() { Stop(); }

std::vector<std::string> HostWatcher::ResolveInitial() {
  std::vector<std::string> now = hosts_.empty() ? std::vector<std::string>{} : resolver_(hosts_);
  std::lock_guard lock(addresses_mu_);
  addresses_ = now;
  return now;
}

void HostWatcher::Start(ApplyFn apply) {
  if (hosts_.empty()) return;
  std::lock_guard lock(stop_mu_);
  if (stopped_ || thread_.joinable()) return;
  apply_ = std::move(apply);
  thread_ = std::thread([this] {
    std::unique_lock lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, interval_, [this] { return stopped_; })) {
      lock.unlock();
      RefreshOnce();
      lock.lock();
    }
  });
}

void HostWatcher::RefreshOnce() {
  std::vector<std::string> now = resolver_(hosts_);
  ++resolutions_;
  if (now.empty()) return;  // nothing resolved: keep faulting the last known addresses
  {
    std::lock_guard lock(addresses_mu_);
    if (now == addresses_) return;
  }
  if (apply_) {
    if (Status s = apply_(now); !s.ok()) {
      spdlog::warn("{}: cannot update peer addresses: {}", label_, s.message());
      return;
    }
  }
  spdlog::info("{}: peer addresses changed ({} now)", label_, now.size());
  ++changes_;
  std::lock_guard lock(addresses_mu_);
  addresses_ = std::move(now);
}

void HostWatcher::Stop() {
  std::thread thread;
  {
    std::lock_guard lock(stop_mu_);
    stopped_ = true;
    thread = std::move(thread_);
  }
  stop_cv_.notify_all();
  if (thread.joinable()) thread.join();
}

std::vector<std::string> HostWatcher::addresses() const {
  std::lock_guard lock(addresses_mu_);
  return addresses_;
}

void HostWatcher::AddEvidence(std::map<std::string, uint64_t>* evidence) const {
  if (hosts_.empty()) return;
  (*evidence)["peer_addresses"] = addresses().size();
  (*evidence)["resolutions"] = resolutions_.load();
  (*evidence)["resolution_changes"] = changes_.load();
}

}  // namespace faultline::agent::host
