#pragma once
// LeaseKeeper: one deadline per fault id; when a deadline passes without being renewed, the
// expiry callback runs for that id (the agent then reverts the fault on its own).

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace faultline::agent {

class LeaseKeeper {
 public:
  // Called with the fault id whose lease expired, on the keeper's thread (or on the thread that
  // calls CheckExpired), never while the keeper's lock is held: it may call back into the keeper.
  using ExpiryCallback = std::function<void(const std::string& fault_id)>;

  // `clock` must outlive the keeper. No thread runs until Start().
  LeaseKeeper(const Clock& clock, ExpiryCallback on_expired);
  // Stops the thread (see Stop); pending leases are dropped without calling the callback.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Starts the thread that waits for the earliest deadline and calls CheckExpired when it
  // passes. Idempotent. Tests with a FakeClock usually do not start it and call CheckExpired.
  void Start();
  // Stops and joins the thread. Idempotent. Must not be called from the expiry callback.
  void Stop();

  // Creates or replaces the lease of `fault_id`, expiring at `deadline` (Clock::Now() scale).
  void Set(const std::string& fault_id, MonoTime deadline);
  // Moves an existing lease to `deadline`. Returns false (and does nothing) when `fault_id` has
  // no lease: never set, removed, or already expired.
  bool Renew(const std::string& fault_id, MonoTime deadline);
  // Cancels the lease; its callback will not run. Idempotent.
  void Remove(const std::string& fault_id);
  // The current deadline, if `fault_id` has a lease.
  std::optional<MonoTime> Deadline(const std::string& fault_id) const;

  // Removes every lease whose deadline is at or before Clock::Now() and calls the callback for
  // each (earliest first), outside the lock. Returns those ids. Thread-safe.
  std::vector<std::string> CheckExpired();

 private:
  void Run();

  const Clock& clock_;
  ExpiryCallback on_expired_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, MonoTime> deadlines_;  // guarded by mu_
  bool stopping_ = false;                      // guarded by mu_
  std::thread thread_;
};

}  // namespace faultline::agent
