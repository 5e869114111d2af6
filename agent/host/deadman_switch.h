#pragma once
// DeadmanSwitch: the kernel's own revert of a fault's nft table when the agent is gone.
//
// Every table a fault creates holds a set `faultline_alive` (type mark, flags timeout) with one
// element, 0x0, that lives for the switch's timeout, and every rule of the table first matches
// `meta mark & 0x0 @faultline_alive`: a constant key, so the lookup succeeds for every packet
// while the element is alive and for none once it has expired. The agent refreshes the element
// of every table it keeps, well before it lapses (every timeout / 4), by deleting and re-adding
// it in one transaction: re-adding alone does not refresh a timeout. When the agent dies (kill -9,
// OOM, a wedged process that no longer refreshes) the rules stop matching within the timeout and
// traffic flows as if the table were gone; the next agent deletes the inert table at start.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "common/status.h"

namespace faultline::agent::host {

class NftRuleset;

// Name of the set that keeps a table's rules alive.
inline constexpr std::string_view kAliveSet = "faultline_alive";
// How long a fault's rules outlive the agent by default.
inline constexpr std::chrono::milliseconds kDefaultDeadmanTimeout{3000};

// Rewrites an nft batch that creates table `family table` so the table's rules lapse with the
// alive set: adds the set and its element (timeout `timeout`) right after the batch's last
// `add table FAMILY TABLE` line, and prefixes the match of every `add rule FAMILY TABLE CHAIN ...`
// / `insert rule ...` line with the alive-set lookup. Other lines are copied unchanged. Pure.
// Precondition: the batch creates the table (has that `add table` line) and names are validated.
std::string ArmDeadman(const std::string& batch, std::string_view family, std::string_view table,
                       std::chrono::milliseconds timeout);

// The batch that refreshes a table's alive element: add (a no-op when present, brings back an
// element that lapsed), delete, add with a fresh timeout, as one transaction. Pure.
std::string DeadmanRefreshBatch(std::string_view family, std::string_view table,
                                std::chrono::milliseconds timeout);

class DeadmanSwitch {
 public:
  // `timeout`: how long rules stay in force without a refresh; at least 500 ms (clamped).
  explicit DeadmanSwitch(std::chrono::milliseconds timeout = kDefaultDeadmanTimeout);
  // Stops the refresher thread; the kept tables then lapse within the timeout.
  ~DeadmanSwitch();
  DeadmanSwitch(const DeadmanSwitch&) = delete;
  DeadmanSwitch& operator=(const DeadmanSwitch&) = delete;

  std::chrono::milliseconds timeout() const { return timeout_; }

  // ArmDeadman with this switch's timeout.
  std::string Arm(const std::string& batch, std::string_view family, std::string_view table) const;

  // Starts keeping `family table` (armed, already created) alive; starts the refresher thread on
  // first use. Idempotent. Thread-safe; never waits for nft I/O.
  void Keep(std::string_view family, std::string_view table);
  // Stops keeping it (call before deleting the table). Idempotent. Thread-safe; never waits for
  // nft I/O (a refresh of it in progress may still finish, or fail quietly).
  void Release(std::string_view family, std::string_view table);

  // One refresh of every kept table, on the calling thread (what the thread does every period).
  // Returns the number of failed refreshes. Each failure is logged and counted.
  int RefreshAll();

  uint64_t refreshes() const { return refreshes_.load(); }
  uint64_t failures() const { return failures_.load(); }
  size_t kept() const;

 private:
  using TableKey = std::pair<std::string, std::string>;  // family, name
  void Loop();

  const std::chrono::milliseconds timeout_;
  // Its own libnftables context: a refresh never queues behind a backend's batch.
  const std::unique_ptr<NftRuleset> nft_;
  std::atomic<uint64_t> refreshes_{0};
  std::atomic<uint64_t> failures_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<TableKey> tables_;  // guarded by mu_
  bool stop_ = false;          // guarded by mu_
  std::thread thread_;         // started by the first Keep, under mu_
};

}  // namespace faultline::agent::host
