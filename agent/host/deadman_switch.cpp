#include "agent/host/deadman_switch.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "agent/host/nft_ruleset.h"

namespace faultline::agent::host {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kMinTimeout{500};
// The constant key: `meta mark & 0x0` is 0 for every packet, so the lookup is "is 0 alive".
constexpr const char* kAliveMatch = "meta mark & 0x0 @faultline_alive ";

std::string Ms(std::chrono::milliseconds t) { return std::to_string(t.count()) + "ms"; }

std::string Element(std::string_view ref, std::chrono::milliseconds timeout) {
  return "add element " + std::string(ref) + " " + std::string(kAliveSet) + " { 0x0 timeout " +
         Ms(timeout) + " }\n";
}

}  // namespace

std::string ArmDeadman(const std::string& batch, std::string_view family, std::string_view table,
                       std::chrono::milliseconds timeout) {
  const std::string ref = std::string(family) + " " + std::string(table);
  const std::string create = "add table " + ref;
  std::vector<std::string> lines;
  {
    std::istringstream in(batch);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  size_t last_create = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == create) last_create = i;
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = lines[i];
    for (const char* verb : {"add rule ", "insert rule "}) {
      const std::string prefix = verb + ref + " ";
      if (line.rfind(prefix, 0) != 0) continue;
      // After the chain name: "add rule inet t CHAIN <match...>".
      size_t chain_end = line.find(' ', prefix.size());
      if (chain_end == std::string::npos) break;
      line.insert(chain_end + 1, kAliveMatch);
      break;
    }
    out += line + "\n";
    if (i == last_create) {
      out += "add set " + ref + " " + std::string(kAliveSet) + " { type mark; flags timeout; }\n";
      out += Element(ref, timeout);
    }
  }
  return out;
}

std::string DeadmanRefreshBatch(std::string_view family, std::string_view table,
                                std::chrono::milliseconds timeout) {
  const std::string ref = std::string(family) + " " + std::string(table);
  return Element(ref, timeout) + "delete element " + ref + " " + std::string(kAliveSet) +
         " { 0x0 }\n" + Element(ref, timeout);
}

DeadmanSwitch::DeadmanSwitch(std::chrono::milliseconds timeout)
    : timeout_(std::max(timeout, kMinTimeout)), nft_(std::make_unique<NftRuleset>()) {}

DeadmanSwitch::~DeadmanSwitch() {
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    thread = std::move(thread_);
  }
  cv_.notify_all();
  if (thread.joinable()) thread.join();
}

std::string DeadmanSwitch::Arm(const std::string& batch, std::string_view family,
                               std::string_view table) const {
  return ArmDeadman(batch, family, table, timeout_);
}

void DeadmanSwitch::Keep(std::string_view family, std::string_view table) {
  std::lock_guard lock(mu_);
  tables_.insert({std::string(family), std::string(table)});
  if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { Loop(); });
}

void DeadmanSwitch::Release(std::string_view family, std::string_view table) {
  std::lock_guard lock(mu_);
  tables_.erase({std::string(family), std::string(table)});
}

size_t DeadmanSwitch::kept() const {
  std::lock_guard lock(mu_);
  return tables_.size();
}

int DeadmanSwitch::RefreshAll() {
  std::set<TableKey> tables;
  {
    std::lock_guard lock(mu_);
    tables = tables_;
  }
  int failed = 0;
  for (const auto& [family, name] : tables) {
    Status s = nft_->Run(DeadmanRefreshBatch(family, name, timeout_));
    if (s.ok()) {
      ++refreshes_;
      continue;
    }
    {
      // A table released (and deleted) while we refreshed it is not a failure.
      std::lock_guard lock(mu_);
      if (tables_.count({family, name}) == 0) continue;
    }
    ++failed;
    ++failures_;
    spdlog::error("dead-man switch: cannot refresh table {} {}: {} (its rules lapse within {} ms)",
                  family, name, s.message(), timeout_.count());
  }
  return failed;
}

void DeadmanSwitch::Loop() {
  // Four refreshes per timeout: three may fail or be late before a live fault lapses.
  const auto period = timeout_ / 4;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    lock.unlock();
    RefreshAll();
    lock.lock();
  }
}

}  // namespace faultline::agent::host
