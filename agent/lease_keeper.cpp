#include "agent/lease_keeper.h"

#include <algorithm>
#include <chrono>

namespace faultline::agent {

LeaseKeeper::LeaseKeeper(const Clock& clock, ExpiryCallback on_expired)
    : clock_(clock), on_expired_(std::move(on_expired)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Set(const std::string& fault_id, MonoTime deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    deadlines_[fault_id] = deadline;
  }
  changed_.notify_all();
}

bool LeaseKeeper::Renew(const std::string& fault_id, MonoTime deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = deadlines_.find(fault_id);
    if (it == deadlines_.end()) return false;
    it->second = deadline;
  }
  changed_.notify_all();
  return true;
}

void LeaseKeeper::Remove(const std::string& fault_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    deadlines_.erase(fault_id);
  }
  changed_.notify_all();
}

std::optional<MonoTime> LeaseKeeper::Deadline(const std::string& fault_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deadlines_.find(fault_id);
  if (it == deadlines_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> LeaseKeeper::CheckExpired() {
  std::vector<std::pair<MonoTime, std::string>> expired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const MonoTime now = clock_.Now();
    for (auto it = deadlines_.begin(); it != deadlines_.end();) {
      if (it->second <= now) {
        expired.emplace_back(it->second, it->first);
        it = deadlines_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::sort(expired.begin(), expired.end());
  std::vector<std::string> ids;
  ids.reserve(expired.size());
  for (auto& [deadline, id] : expired) {
    if (on_expired_) on_expired_(id);
    ids.push_back(std::move(id));
  }
  return ids;
}

void LeaseKeeper::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      changed_.wait(lock);
      continue;
    }
    MonoTime earliest = MonoTime::max();
    for (const auto& [id, deadline] : deadlines_) earliest = std::min(earliest, deadline);
    const MonoTime now = clock_.Now();
    if (earliest > now) {
      // The injected Clock is not a std::chrono clock, so wait for the remaining span on
      // steady_clock (the same CLOCK_MONOTONIC as SystemClock) and re-read the Clock after: a
      // FakeClock that has not moved simply leads to another wait.
      changed_.wait_until(lock, std::chrono::steady_clock::now() + (earliest - now));
      continue;
    }
    lock.unlock();
    CheckExpired();
    lock.lock();
  }
}

}  // namespace faultline::agent
