#pragma once
// A scriptable FaultBackend for agent framework tests. Its state lives in a shared
// FakeBackendState so a test can inspect and steer it after the registry owns the backend.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/fault_backend.h"
#include "agent/workloads/workload.h"

namespace faultline::agent::testing {

struct FakeBackendState {
  std::mutex mu;
  // What FollowsRestarts answers (set before the backend is used).
  bool follows_restarts = true;
  // A latch for Apply: while `block_apply` is set, Apply waits (without holding `mu`) until
  // `release_apply` is set; `blocked` counts the applies waiting now. Notified on `cv`.
  std::condition_variable cv;
  bool block_apply = false;
  bool release_apply = false;
  int blocked = 0;
  // The same latch for FakeHandle::Revert: `block_revert`, `release_revert`, `reverts_blocked`.
  // `revert_calls` counts every call (a second call on the same handle included).
  bool block_revert = false;
  // Only these faults' reverts wait on the latch (block_revert makes every one wait).
  std::set<std::string> block_revert_ids;
  bool release_revert = false;
  int reverts_blocked = 0;
  int revert_calls = 0;

  // Opens the Apply latch (blocked applies go on, later ones do not wait).
  void ReleaseApplies() {
    std::lock_guard<std::mutex> lock(mu);
    release_apply = true;
    cv.notify_all();
  }
  // Waits at most `timeout` until `n` applies wait on the latch.
  bool AwaitBlockedApplies(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return blocked >= n; });
  }
  // Steering.
  Status detect_status;
  Status apply_status;
  Status revert_status;
  Status orphan_status;
  std::string journal_dir;  // when set, Apply checks <journal_dir>/<id>.pb exists
  // Observations.
  std::vector<std::string> applied;
  std::vector<std::string> reverted;
  std::vector<std::pair<std::string, v1::FaultSpec>> orphans_reverted;
  bool journal_present_during_apply = false;
  // Ids of the workloads ApplyInWorkload was given, in order.
  std::vector<std::string> workloads_applied;
  uint64_t evidence = 0;  // reported as {"queries_faulted": evidence}
};

class FakeHandle final : public FaultHandle {
 public:
  FakeHandle(std::string id, std::shared_ptr<FakeBackendState> state)
      : id_(std::move(id)), state_(std::move(state)) {}
  Status Revert() override {
    std::unique_lock<std::mutex> lock(state_->mu);
    ++state_->revert_calls;
    if (state_->block_revert || state_->block_revert_ids.count(id_) != 0) {
      ++state_->reverts_blocked;
      state_->cv.notify_all();
      state_->cv.wait(lock, [this] { return state_->release_revert; });
      --state_->reverts_blocked;
    }
    if (!state_->revert_status.ok()) return state_->revert_status;
    if (!reverted_) state_->reverted.push_back(id_);
    reverted_ = true;
    return Status::Ok();
  }
  Evidence GetEvidence() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return {{"queries_faulted", state_->evidence}};
  }

 private:
  std::string id_;
  std::shared_ptr<FakeBackendState> state_;
  bool reverted_ = false;  // guarded by state_->mu
};

// Serves kind "dns" (FaultSpec.dns). Validate rejects a spec with no domains.
class FakeBackend final : public FaultBackend {
 public:
  explicit FakeBackend(std::shared_ptr<FakeBackendState> state) : state_(std::move(state)) {}
  std::string Kind() const override { return "dns"; }
  Status DetectCapability() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->detect_status;
  }
  Status Validate(const v1::FaultSpec& spec) const override {
    if (spec.dns().domains().empty()) return InvalidArgument("dns.domains: must not be empty");
    return Status::Ok();
  }
  bool FollowsRestarts(const v1::FaultSpec&) const override { return state_->follows_restarts; }
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    if (state_->block_apply) {
      ++state_->blocked;
      state_->cv.notify_all();
      state_->cv.wait(lock, [this] { return state_->release_apply; });
      --state_->blocked;
    }
    if (!state_->journal_dir.empty()) {
      state_->journal_present_during_apply =
          std::filesystem::exists(state_->journal_dir + "/" + fault_id + ".pb");
    }
    if (!state_->apply_status.ok()) return state_->apply_status;
    state_->applied.push_back(fault_id);
    return std::unique_ptr<FaultHandle>(std::make_unique<FakeHandle>(fault_id, state_));
  }
  // As Apply, recording the workload's id.
  Result<std::unique_ptr<FaultHandle>> ApplyInWorkload(
      const std::string& fault_id, const v1::FaultSpec& spec,
      const workloads::Workload& workload) override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->workloads_applied.push_back(workload.id);
    }
    return Apply(fault_id, spec);
  }
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->orphan_status.ok()) return state_->orphan_status;
    state_->orphans_reverted.emplace_back(fault_id, spec);
    return Status::Ok();
  }

 private:
  std::shared_ptr<FakeBackendState> state_;
};

// A dns spec for `domain` with mode NODATA.
inline v1::FaultSpec DnsSpec(const std::string& domain) {
  v1::FaultSpec spec;
  spec.mutable_dns()->add_domains(domain);
  spec.mutable_dns()->set_mode(v1::DnsFault::NODATA);
  return spec;
}

inline v1::ApplyFaultRequest MakeRequest(const std::string& run_id, const std::string& fault_id,
                                         const std::string& domain = "db.example.test",
                                         uint32_t lease_ttl_ms = 10'000) {
  v1::ApplyFaultRequest request;
  request.set_run_id(run_id);
  request.set_fault_id(fault_id);
  *request.mutable_spec() = DnsSpec(domain);
  request.set_lease_ttl_ms(lease_ttl_ms);
  return request;
}

// A fresh empty directory under the test temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/agent_test.XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    path_ = ::mkdtemp(buf.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace faultline::agent::testing
