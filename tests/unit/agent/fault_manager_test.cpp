#include "agent/fault_manager.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <optional>

#include "fake_backend.h"

namespace faultline::agent {
namespace {

using google::protobuf::util::MessageDifferencer;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeBackend;
using testing::FakeBackendState;
using testing::MakeRequest;
using testing::TempDir;

class FaultManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto journal = Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
    state_->journal_dir = journal_->dir();
    ASSERT_TRUE(registry_.Register(std::make_unique<FakeBackend>(state_)).ok());
    registry_.DetectAll();
    options_.max_active_faults = 3;
    options_.max_lease_ttl = seconds(60);
    options_.sweep_tables = [this]() -> Result<std::vector<std::string>> {
      ++sweeps_;
      return std::vector<std::string>{"faultline_stale_0"};
    };
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, options_);
  }

  bool Journaled(const std::string& id) const {
    return std::filesystem::exists(journal_->dir() + "/" + id + ".pb");
  }
  size_t Applied() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->applied.size();
  }
  std::vector<std::string> Reverted() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->reverted;
  }

  // Makes every backend Apply wait on the latch until ReleaseApplies().
  void BlockApplies() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->block_apply = true;
  }
  void ReleaseApplies() { state_->ReleaseApplies(); }
  // Waits (bounded) until `n` applies are inside the backend.
  bool WaitBlocked(int n) { return state_->AwaitBlockedApplies(n, kBound); }
  // A revert that failed is retried by the lease thread once the backend works again.
  void ExpectFailedRevertRetried(const std::string& id) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->revert_status = Status::Ok();
    }
    clock_.Advance(options_.revert_retry);
    EXPECT_EQ(manager_->CheckLeases(), std::vector<std::string>{id});
    EXPECT_EQ(manager_->ActiveCount(), 0u);
    EXPECT_FALSE(Journaled(id));
  }
  // Starts an Apply of `id` on its own thread and waits until the backend holds it.
  std::future<Result<v1::FaultStatus>> StartStuckApply(const std::string& id,
                                                       ApplyCancelledFn on_cancelled = nullptr) {
    BlockApplies();
    int before = 0;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      before = state_->blocked;
    }
    auto future = std::async(std::launch::async, [this, id, on_cancelled] {
      return manager_->Apply(MakeRequest("run1", id), on_cancelled);
    });
    EXPECT_TRUE(WaitBlocked(before + 1)) << "the backend never saw the apply of " << id;
    return future;
  }
  // Whether `f` is ready within the bound. A stop stuck behind the apply fails the test here
  // (and the latch is released so the test can still end).
  template <typename T>
  bool EndsWhileApplyIsStuck(std::future<T>& f) {
    bool ended = f.wait_for(kBound) == std::future_status::ready;
    if (!ended) ReleaseApplies();
    return ended;
  }

  static constexpr std::chrono::seconds kBound{10};
  TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<FakeBackendState> state_ = std::make_shared<FakeBackendState>();
  FaultRegistry registry_;
  std::unique_ptr<Journal> journal_;
  FaultManagerOptions options_;
  int sweeps_ = 0;
  std::unique_ptr<FaultManager> manager_;
};

TEST_F(FaultManagerTest, ApplyThenRevertThenRevertAgainIsOk) {
  Result<v1::FaultStatus> applied = manager_->Apply(MakeRequest("run1", "run1_0"));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->state(), v1::ACTIVE);
  EXPECT_GT(applied->lease_expires_unix_ms(), applied->applied_at_unix_ms());
  EXPECT_TRUE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 1u);

  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->evidence = 7;
  }
  auto reverted = manager_->Revert("run1_0", "request");
  ASSERT_TRUE(reverted.ok()) << reverted.status().ToString();
  ASSERT_TRUE(reverted->has_value());
  EXPECT_EQ((*reverted)->state(), v1::REVERTED);
  EXPECT_EQ((*reverted)->revert_reason(), "request");
  EXPECT_GT((*reverted)->reverted_at_unix_ms(), 0);
  EXPECT_EQ((*reverted)->evidence().at("queries_faulted"), 7u);
  EXPECT_FALSE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 0u);

  auto again = manager_->Revert("run1_0", "request");
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->revert_reason(), "request");  // the remembered final status
  EXPECT_EQ(Reverted(), std::vector<std::string>{"run1_0"});

  auto unknown = manager_->Revert("never_applied", "request");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

TEST_F(FaultManagerTest, JournalRecordExistsWhileBackendApplies) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_TRUE(state_->journal_present_during_apply);
}

TEST_F(FaultManagerTest, LeaseExpiryRevertsFault) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0", "a.test", 5000)).ok());
  clock_.Advance(milliseconds(4999));
  EXPECT_TRUE(manager_->CheckLeases().empty());
  EXPECT_EQ(manager_->ActiveCount(), 1u);

  clock_.Advance(milliseconds(1));
  EXPECT_EQ(manager_->CheckLeases(), std::vector<std::string>{"run1_0"});
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_FALSE(Journaled("run1_0"));
  auto status = manager_->Get("run1_0");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::REVERTED);
  EXPECT_EQ(status->revert_reason(), "lease-expired");
}

TEST_F(FaultManagerTest, RenewPostponesLeaseExpiry) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0", "a.test", 5000)).ok());
  clock_.Advance(seconds(4));
  ASSERT_TRUE(manager_->Renew("run1_0", 5000).ok());
  clock_.Advance(seconds(4));
  EXPECT_TRUE(manager_->CheckLeases().empty());
  EXPECT_EQ(manager_->ActiveCount(), 1u);
  clock_.Advance(seconds(1));
  EXPECT_EQ(manager_->CheckLeases().size(), 1u);
}

TEST_F(FaultManagerTest, MaxFaultDurationRevertsHoweverOftenRenewed) {
  FaultManagerOptions options = options_;
  options.max_fault_duration = seconds(12);
  FaultManager manager(registry_, *journal_, clock_, options);
  ASSERT_TRUE(manager.Apply(MakeRequest("run1", "run1_0", "a.test", 5000)).ok());
  for (int i = 0; i < 2; ++i) {
    clock_.Advance(seconds(4));
    ASSERT_TRUE(manager.Renew("run1_0", 5000).ok());
    EXPECT_TRUE(manager.CheckLeases().empty());
  }
  clock_.Advance(seconds(3));  // 11 s: still inside the cap even though the lease would run on
  ASSERT_TRUE(manager.Renew("run1_0", 5000).ok());
  EXPECT_TRUE(manager.CheckLeases().empty());
  clock_.Advance(seconds(1));  // 12 s: the cap, although the last renewal asked for 16 s
  EXPECT_EQ(manager.CheckLeases(), std::vector<std::string>{"run1_0"});
  EXPECT_EQ(manager.ActiveCount(), 0u);
  auto status = manager.Get("run1_0");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->revert_reason(), "max-duration");
  EXPECT_FALSE(Journaled("run1_0"));
}

TEST_F(FaultManagerTest, RenewOfUnknownOrRevertedFaultFails) {
  EXPECT_EQ(manager_->Renew("run1_0", 1000).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  ASSERT_TRUE(manager_->Revert("run1_0", "request").ok());
  EXPECT_EQ(manager_->Renew("run1_0", 1000).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(FaultManagerTest, SameIdSameSpecRenewsLeaseWithoutReapplying) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0", "a.test", 5000)).ok());
  clock_.Advance(seconds(4));
  Result<v1::FaultStatus> again = manager_->Apply(MakeRequest("run1", "run1_0", "a.test", 5000));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->state(), v1::ACTIVE);
  EXPECT_EQ(Applied(), 1u);
  clock_.Advance(seconds(4));
  EXPECT_TRUE(manager_->CheckLeases().empty());  // renewed at t=4s until t=9s
}

TEST_F(FaultManagerTest, ApplyArrivingAfterTheRevertIsRefusedNotReapplied) {
  // A retried apply whose first attempt was delayed in the network reaches the agent after the
  // run reverted the fault (or after a halt): it must not put the fault back.
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  ASSERT_TRUE(manager_->Revert("run1_0", "halt").ok());
  Result<v1::FaultStatus> late = manager_->Apply(MakeRequest("run1", "run1_0"));
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(late.status().message().find("halt"), std::string::npos) << late.status().ToString();
  EXPECT_EQ(Applied(), 1u);
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_FALSE(Journaled("run1_0"));
  // Control: another fault id of the same run still applies.
  EXPECT_TRUE(manager_->Apply(MakeRequest("run1", "run1_1")).ok());
  EXPECT_EQ(Applied(), 2u);
}

TEST_F(FaultManagerTest, SameIdDifferentSpecIsAlreadyExists) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0", "a.test")).ok());
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_0", "b.test")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(manager_->Apply(MakeRequest("run2", "run1_0", "a.test")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Applied(), 1u);
  EXPECT_EQ(manager_->List(false)[0].spec().dns().domains(0), "a.test");
}

TEST_F(FaultManagerTest, ApplyBeyondCapIsResourceExhausted) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_" + std::to_string(i))).ok());
  }
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_3")).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_FALSE(Journaled("run1_3"));
  EXPECT_EQ(Applied(), 3u);
  // Re-applying an active fault at the cap is still an idempotent renewal.
  EXPECT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
}

// The manager validates every field itself (common/faultspec), whatever the backend checks: the
// fake backend here only looks at domains.
TEST_F(FaultManagerTest, ValidatesEveryFieldWhateverTheBackendChecks) {
  v1::ApplyFaultRequest request = MakeRequest("run1", "run1_0");
  request.mutable_spec()->mutable_dns()->set_mode(v1::DnsFault::SPOOF);
  for (int i = 0; i < 65536; ++i) request.mutable_spec()->mutable_dns()->add_spoof_addresses("::1");
  Status s = manager_->Apply(request).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dns.spoof_addresses"), std::string::npos) << s.message();
  EXPECT_EQ(manager_->ValidateRequest(request).message(), s.message());
  EXPECT_EQ(Applied(), 0u);
  EXPECT_FALSE(Journaled("run1_0"));
}

TEST_F(FaultManagerTest, InvalidRequestsAreRejectedWithNothingApplied) {
  struct Case {
    v1::ApplyFaultRequest request;
    StatusCode code;
  };
  std::vector<Case> cases;
  cases.push_back({MakeRequest("", "run1_0"), StatusCode::kInvalidArgument});
  cases.push_back({MakeRequest("Run-1", "run1_0"), StatusCode::kInvalidArgument});
  cases.push_back({MakeRequest("run1", ""), StatusCode::kInvalidArgument});
  cases.push_back({MakeRequest("run1", "../../etc/passwd"), StatusCode::kInvalidArgument});
  cases.push_back({MakeRequest("run1", std::string(49, 'a')), StatusCode::kInvalidArgument});
  cases.push_back({MakeRequest("run1", "run1_0", "a.test", 0), StatusCode::kInvalidArgument});
  cases.push_back({MakeRequest("run1", "run1_0", "a.test", 60'001), StatusCode::kInvalidArgument});
  v1::ApplyFaultRequest no_kind = MakeRequest("run1", "run1_0");
  no_kind.clear_spec();
  cases.push_back({no_kind, StatusCode::kInvalidArgument});
  v1::ApplyFaultRequest no_domains = MakeRequest("run1", "run1_0");
  no_domains.mutable_spec()->mutable_dns()->clear_domains();
  cases.push_back({no_domains, StatusCode::kInvalidArgument});
  v1::ApplyFaultRequest unsupported = MakeRequest("run1", "run1_0");
  unsupported.mutable_spec()->mutable_network();
  cases.push_back({unsupported, StatusCode::kFailedPrecondition});

  for (const Case& c : cases) {
    Status applied = manager_->Apply(c.request).status();
    EXPECT_EQ(applied.code(), c.code) << c.request.ShortDebugString();
    // The validation the fuzz target drives gives the very same answer.
    Status validated = manager_->ValidateRequest(c.request);
    EXPECT_EQ(validated.code(), applied.code()) << c.request.ShortDebugString();
    EXPECT_EQ(validated.message(), applied.message());
  }
  EXPECT_TRUE(manager_->ValidateRequest(MakeRequest("run1", "run1_0")).ok());
  EXPECT_EQ(Applied(), 0u);
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_TRUE(journal_->LoadAll().entries.empty());
}

TEST_F(FaultManagerTest, UndetectedCapabilityIsFailedPrecondition) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->detect_status = FailedPrecondition("no nat hook on this kernel");
  }
  registry_.DetectAll();
  Status status = manager_->Apply(MakeRequest("run1", "run1_0")).status();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("no nat hook"), std::string::npos) << status.message();
  EXPECT_EQ(Applied(), 0u);
  // ValidateRequest judges the request, not the host.
  EXPECT_TRUE(manager_->ValidateRequest(MakeRequest("run1", "run1_0")).ok());
}

TEST_F(FaultManagerTest, BackendApplyFailureRemovesJournalRecord) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->apply_status = Unavailable("nft said no");
  }
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_0")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_FALSE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 0u);
}

TEST_F(FaultManagerTest, FailedRevertKeepsFaultActiveAndRetriesOnItsOwn) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->revert_status = Unavailable("netlink busy");
  }
  EXPECT_EQ(manager_->Revert("run1_0", "request").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(manager_->ActiveCount(), 1u);
  EXPECT_TRUE(Journaled("run1_0"));
  ExpectFailedRevertRetried("run1_0");
}

TEST_F(FaultManagerTest, RevertAllByRunRevertsOnlyThatRun) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("runa", "runa_0")).ok());
  ASSERT_TRUE(manager_->Apply(MakeRequest("runa", "runa_1")).ok());
  ASSERT_TRUE(manager_->Apply(MakeRequest("runb", "runb_0")).ok());

  auto reverted = manager_->RevertAll("runa", "revert-all");
  ASSERT_TRUE(reverted.ok()) << reverted.status().ToString();
  ASSERT_EQ(reverted->size(), 2u);
  for (const auto& status : *reverted) {
    EXPECT_EQ(status.run_id(), "runa");
    EXPECT_EQ(status.revert_reason(), "revert-all");
  }
  std::vector<v1::FaultStatus> active = manager_->List(false);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].fault_id(), "runb_0");
  EXPECT_EQ(manager_->List(true).size(), 3u);

  EXPECT_EQ(manager_->RevertAll("NOT VALID", "revert-all").status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(manager_->RevertAll("", "revert-all").ok());
  EXPECT_EQ(manager_->ActiveCount(), 0u);
}

TEST_F(FaultManagerTest, RecoverRevertsJournaledFaultsWithRecordedSpec) {
  v1::ApplyFaultRequest request = MakeRequest("run1", "run1_0", "dynamodb.example.test");
  ASSERT_TRUE(manager_->Apply(request).ok());
  // Crash: the manager goes away without reverting; the journal still holds the fault.
  manager_.reset();
  ASSERT_TRUE(Journaled("run1_0"));
  std::ofstream(journal_->dir() + "/broken_1.pb") << "\x08\x96";

  auto state = std::make_shared<FakeBackendState>();
  FaultRegistry registry;
  ASSERT_TRUE(registry.Register(std::make_unique<FakeBackend>(state)).ok());
  registry.DetectAll();
  FaultManager restarted(registry, *journal_, clock_, options_);
  RecoveryReport report = restarted.Recover();

  EXPECT_EQ(report.reverted, std::vector<std::string>{"run1_0"});
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(report.corrupt.size(), 1u);
  EXPECT_EQ(report.swept_tables, std::vector<std::string>{"faultline_stale_0"});
  EXPECT_EQ(sweeps_, 1);
  {
    std::lock_guard<std::mutex> lock(state->mu);
    ASSERT_EQ(state->orphans_reverted.size(), 1u);
    EXPECT_EQ(state->orphans_reverted[0].first, "run1_0");
    EXPECT_TRUE(MessageDifferencer::Equals(state->orphans_reverted[0].second, request.spec()));
  }
  JournalContents left = journal_->LoadAll();
  EXPECT_TRUE(left.entries.empty());
  EXPECT_TRUE(left.problems.empty());  // the corrupt record was quarantined
  auto status = restarted.Get("run1_0");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), v1::REVERTED);
  EXPECT_EQ(status->revert_reason(), "journal");
}

TEST_F(FaultManagerTest, FailedOrphanRevertKeepsRecordForNextStart) {
  ASSERT_TRUE(journal_->Record(MakeRequest("run1", "run1_0")).ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->orphan_status = Unavailable("nft said no");
  }
  RecoveryReport report = manager_->Recover();
  EXPECT_TRUE(report.reverted.empty());
  EXPECT_EQ(report.failed.size(), 1u);
  EXPECT_TRUE(Journaled("run1_0"));
}

TEST_F(FaultManagerTest, ShutdownRevertsEverythingAndRefusesNewFaults) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("runa", "runa_0")).ok());
  ASSERT_TRUE(manager_->Apply(MakeRequest("runb", "runb_0")).ok());
  EXPECT_TRUE(manager_->Shutdown().ok());
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_TRUE(journal_->LoadAll().entries.empty());
  for (const auto& status : manager_->List(true)) EXPECT_EQ(status.revert_reason(), "shutdown");
  EXPECT_EQ(manager_->Apply(MakeRequest("runc", "runc_0")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_TRUE(manager_->Shutdown().ok());  // idempotent
}

TEST_F(FaultManagerTest, ListReportsLiveEvidence) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->evidence = 42;
  }
  std::vector<v1::FaultStatus> list = manager_->List(false);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].evidence().at("queries_faulted"), 42u);
}

TEST_F(FaultManagerTest, RevertAllGoesAheadWhileAnApplyIsStuckAndCancelsIt) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  auto stuck = StartStuckApply("run1_1");

  auto halt = std::async(std::launch::async, [this] { return manager_->RevertAll("", "halt"); });
  ASSERT_TRUE(EndsWhileApplyIsStuck(halt)) << "RevertAll waited for the stuck apply";
  Result<std::vector<v1::FaultStatus>> reverted = halt.get();
  ASSERT_TRUE(reverted.ok()) << reverted.status().ToString();
  EXPECT_EQ(reverted->size(), 2u);  // the active fault, and the cancelled one
  EXPECT_EQ(Reverted(), std::vector<std::string>{"run1_0"});
  EXPECT_FALSE(Journaled("run1_0"));

  ReleaseApplies();
  Result<v1::FaultStatus> ended = stuck.get();
  EXPECT_EQ(ended.status().code(), StatusCode::kAborted);
  EXPECT_NE(ended.status().message().find("halt"), std::string::npos) << ended.status().ToString();
  // What the backend applied after the halt was reverted at once, and nothing stays behind.
  EXPECT_EQ(Reverted(), (std::vector<std::string>{"run1_0", "run1_1"}));
  EXPECT_FALSE(Journaled("run1_1"));
  EXPECT_TRUE(journal_->LoadAll().entries.empty());
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_TRUE(manager_->List(false).empty());
  // Never applied again.
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_1")).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(FaultManagerTest, RevertOfAStuckApplyReturnsAtOnceAndTellsTheApplyCaller) {
  std::promise<Status> told;
  auto stuck = StartStuckApply("run1_0", [&told](const Status& s) { told.set_value(s); });
  EXPECT_EQ(manager_->ActiveCount(), 1u);             // a pending apply counts against the cap
  EXPECT_FALSE(manager_->Get("run1_0").has_value());  // not in effect yet
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_0")).status().code(),
            StatusCode::kUnavailable);  // the same apply again: still in progress

  auto revert =
      std::async(std::launch::async, [this] { return manager_->Revert("run1_0", "request"); });
  ASSERT_TRUE(EndsWhileApplyIsStuck(revert)) << "Revert waited for the stuck apply";
  auto result = revert.get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->has_value());
  EXPECT_EQ((*result)->state(), v1::REVERTED);
  EXPECT_EQ((*result)->revert_reason(), "request");
  // The caller of the apply learns it now, not when the backend returns.
  auto told_future = told.get_future();
  ASSERT_EQ(told_future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(told_future.get().code(), StatusCode::kAborted);
  // Idempotent while the apply is still stuck.
  auto again = manager_->Revert("run1_0", "request");
  ASSERT_TRUE(again.ok());

  ReleaseApplies();
  EXPECT_EQ(stuck.get().status().code(), StatusCode::kAborted);
  EXPECT_EQ(Reverted(), std::vector<std::string>{"run1_0"});  // once
  EXPECT_FALSE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 0u);
}

TEST_F(FaultManagerTest, LeaseExpiryGoesAheadWhileAnotherApplyIsStuck) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0", "a.test", 5000)).ok());
  auto stuck = StartStuckApply("run1_1");
  clock_.Advance(seconds(5));
  auto expiry = std::async(std::launch::async, [this] { return manager_->CheckLeases(); });
  ASSERT_TRUE(EndsWhileApplyIsStuck(expiry)) << "lease expiry waited for the stuck apply";
  EXPECT_EQ(expiry.get(), std::vector<std::string>{"run1_0"});
  EXPECT_FALSE(Journaled("run1_0"));

  // The other apply was not cancelled: it completes.
  ReleaseApplies();
  Result<v1::FaultStatus> applied = stuck.get();
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->state(), v1::ACTIVE);
  EXPECT_TRUE(Journaled("run1_1"));
}

TEST_F(FaultManagerTest, ShutdownGoesAheadWhileAnApplyIsStuck) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  auto stuck = StartStuckApply("run1_1");
  auto shutdown = std::async(std::launch::async, [this] { return manager_->Shutdown(); });
  ASSERT_TRUE(EndsWhileApplyIsStuck(shutdown)) << "Shutdown waited for the stuck apply";
  EXPECT_TRUE(shutdown.get().ok());
  EXPECT_EQ(Reverted(), std::vector<std::string>{"run1_0"});

  ReleaseApplies();
  Result<v1::FaultStatus> ended = stuck.get();
  EXPECT_EQ(ended.status().code(), StatusCode::kAborted);
  EXPECT_NE(ended.status().message().find("shutdown"), std::string::npos);
  EXPECT_EQ(Reverted(), (std::vector<std::string>{"run1_0", "run1_1"}));
  EXPECT_TRUE(journal_->LoadAll().entries.empty());
  EXPECT_EQ(manager_->ActiveCount(), 0u);
}

TEST_F(FaultManagerTest, CancelledApplyWhoseRevertFailsStaysActiveAndIsRetried) {
  auto stuck = StartStuckApply("run1_0");
  ASSERT_TRUE(manager_->Revert("run1_0", "halt").ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->revert_status = Unavailable("netlink busy");
  }
  ReleaseApplies();
  EXPECT_EQ(stuck.get().status().code(), StatusCode::kAborted);
  EXPECT_TRUE(Journaled("run1_0"));  // still in effect: kept for the retry (and a restart)
  EXPECT_EQ(manager_->ActiveCount(), 1u);
  // Still in effect, but never renewed or re-applied.
  EXPECT_EQ(manager_->Renew("run1_0", 1000).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_0")).status().code(),
            StatusCode::kFailedPrecondition);
  ExpectFailedRevertRetried("run1_0");
}

TEST_F(FaultManagerTest, ConcurrentRevertsOfOneFaultRevertItOnce) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->block_revert = true;
  }
  auto release = [this] {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->release_revert = true;
    state_->cv.notify_all();
  };
  auto first = std::async(std::launch::async, [this] { return manager_->Revert("run1_0", "a"); });
  {
    std::unique_lock<std::mutex> lock(state_->mu);
    ASSERT_TRUE(state_->cv.wait_for(lock, kBound, [this] { return state_->reverts_blocked == 1; }));
  }
  // A halt and another revert reach the same fault while its revert is in progress (or just
  // after: either way the backend reverts it once).
  auto second = std::async(std::launch::async, [this] { return manager_->RevertAll("", "b"); });
  auto third = std::async(std::launch::async, [this] { return manager_->Revert("run1_0", "c"); });
  EXPECT_EQ(manager_->ActiveCount(), 1u);  // still counted while its revert runs
  release();
  ASSERT_EQ(first.wait_for(kBound), std::future_status::ready);
  ASSERT_EQ(second.wait_for(kBound), std::future_status::ready);
  ASSERT_EQ(third.wait_for(kBound), std::future_status::ready);
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());
  auto last = third.get();
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ((*last)->revert_reason(), "a");  // the revert that happened
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->revert_calls, 1);
}

// A halt with one fault whose revert never returns (a netlink call, a /proc read stuck in the
// kernel): every other fault is still reverted, and the halt answers by its deadline with an
// error naming the stuck fault, which stays journaled for the dead-man switch and the next start.
// Reverted one after another (as before), the halt never returned.
class StuckRevertTest : public FaultManagerTest {
 protected:
  void SetUp() override {
    FaultManagerTest::SetUp();
    FaultManagerOptions options = options_;
    // Long enough for the reverts that do return; the stuck one never does.
    options.revert_deadline = std::chrono::seconds(2);
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, options);
    for (const char* id : {"run1_0", "run1_1", "run1_2"}) {
      ASSERT_TRUE(manager_->Apply(MakeRequest("run1", id)).ok()) << id;
    }
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->block_revert_ids = {"run1_0"};  // first in every order the manager uses
  }
  void TearDown() override {
    Release();
    // The abandoned revert finishes on its worker before the manager goes.
    EXPECT_TRUE(manager_->WaitRevertsIdle(kBound));
  }
  void Release() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->release_revert = true;
    state_->cv.notify_all();
  }
  int RevertsBlocked() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->reverts_blocked;
  }
  // Reverted(), in id order (concurrent reverts end in any order).
  std::vector<std::string> RevertedSorted() {
    std::vector<std::string> ids = Reverted();
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  // Runs `stop` on its own thread; its result, or nullopt when it did not return within kBound
  // (the latch is then opened so the thread can end and the test fails instead of hanging).
  std::optional<Status> Within(std::function<Status()> stop) {
    auto done = std::async(std::launch::async, std::move(stop));
    if (done.wait_for(kBound) != std::future_status::ready) {
      ADD_FAILURE() << "the stop did not return while one revert was stuck";
      Release();
      done.wait();
      return std::nullopt;
    }
    return done.get();
  }
};

TEST_F(StuckRevertTest, HaltRevertsEveryOtherFaultAndReportsTheStuckOne) {
  std::optional<Status> halted =
      Within([this] { return manager_->RevertAll("", "halt").status(); });
  ASSERT_TRUE(halted.has_value());
  // The stuck revert is still blocked: the others finished without it.
  EXPECT_EQ(RevertsBlocked(), 1);
  EXPECT_EQ(RevertedSorted(), (std::vector<std::string>{"run1_1", "run1_2"}));
  EXPECT_FALSE(Journaled("run1_1"));
  EXPECT_FALSE(Journaled("run1_2"));
  // Reported, never dropped: an error naming the fault, which stays counted and journaled.
  EXPECT_EQ(halted->code(), StatusCode::kInternal) << halted->ToString();
  EXPECT_NE(halted->message().find("run1_0: revert did not finish within 2000 ms"),
            std::string::npos)
      << halted->message();
  EXPECT_EQ(halted->message().find("run1_1"), std::string::npos) << halted->message();
  EXPECT_TRUE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 1u);

  // When the backend finally returns, the abandoned revert completes.
  Release();
  ASSERT_TRUE(manager_->WaitRevertsIdle(kBound));
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_FALSE(Journaled("run1_0"));
}

TEST_F(StuckRevertTest, ShutdownRevertsEveryOtherFaultAndReportsTheStuckOne) {
  std::optional<Status> stopped = Within([this] { return manager_->Shutdown(); });
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(RevertsBlocked(), 1);
  EXPECT_EQ(RevertedSorted(), (std::vector<std::string>{"run1_1", "run1_2"}));
  EXPECT_EQ(stopped->code(), StatusCode::kInternal) << stopped->ToString();
  EXPECT_NE(stopped->message().find("run1_0"), std::string::npos) << stopped->message();
  EXPECT_TRUE(Journaled("run1_0"));
}

// A single revert (the RevertFault RPC) of the stuck fault answers by the deadline with
// DEADLINE_EXCEEDED; the fault stays active and journaled, and is reverted when the backend
// returns. Before, Revert waited on the backend without a bound.
TEST_F(StuckRevertTest, RevertOfTheStuckFaultReportsDeadlineExceeded) {
  std::optional<Status> reverted =
      Within([this] { return manager_->Revert("run1_0", "user").status(); });
  ASSERT_TRUE(reverted.has_value());
  EXPECT_EQ(reverted->code(), StatusCode::kDeadlineExceeded) << reverted->ToString();
  EXPECT_NE(reverted->message().find("run1_0: revert did not finish within 2000 ms"),
            std::string::npos)
      << reverted->message();
  EXPECT_EQ(RevertsBlocked(), 1);
  EXPECT_TRUE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 3u);
  auto status = manager_->Get("run1_0");
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->state(), v1::REVERTED);
  // Negative control: a revert that does return is unaffected.
  auto other = manager_->Revert("run1_1", "user");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_FALSE(Journaled("run1_1"));

  Release();
  ASSERT_TRUE(manager_->WaitRevertsIdle(kBound));
  EXPECT_FALSE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 1u);  // run1_2
}

// The lease thread reverts expired faults one by one: the stuck one does not hold it, so the
// faults after it are still reverted and the lease check returns.
TEST_F(StuckRevertTest, LeaseExpiryIsNotHeldByTheStuckRevert) {
  clock_.Advance(options_.max_lease_ttl);
  std::optional<Status> checked = Within([this] {
    std::vector<std::string> expired = manager_->CheckLeases();
    std::sort(expired.begin(), expired.end());
    EXPECT_EQ(expired, (std::vector<std::string>{"run1_0", "run1_1", "run1_2"}));
    return Status::Ok();
  });
  ASSERT_TRUE(checked.has_value());
  EXPECT_EQ(RevertsBlocked(), 1);
  EXPECT_EQ(RevertedSorted(), (std::vector<std::string>{"run1_1", "run1_2"}));
  EXPECT_TRUE(Journaled("run1_0"));
  EXPECT_EQ(manager_->ActiveCount(), 1u);

  Release();
  ASSERT_TRUE(manager_->WaitRevertsIdle(kBound));
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_FALSE(Journaled("run1_0"));
}

TEST_F(FaultManagerTest, ApplyOnceGuardIsBoundedByTimeNotByCount) {
  // 300 faults reverted since: the first id must still be refused (a count-bounded guard of 256
  // entries forgot it and applied it again).
  for (int i = 0; i < 300; ++i) {
    const std::string id = "run1_" + std::to_string(i);
    ASSERT_TRUE(manager_->Apply(MakeRequest("run1", id)).ok()) << id;
    ASSERT_TRUE(manager_->Revert(id, "request").ok()) << id;
  }
  Status late = manager_->Apply(MakeRequest("run1", "run1_0")).status();
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition) << late.ToString();
  EXPECT_EQ(Applied(), 300u);
  // Still refused just inside the window (max of the lease and fault-duration caps)...
  const auto window =
      std::max<std::chrono::milliseconds>(options_.max_lease_ttl, options_.max_fault_duration);
  clock_.Advance(window - milliseconds(1));
  EXPECT_EQ(manager_->Apply(MakeRequest("run1", "run1_0")).status().code(),
            StatusCode::kFailedPrecondition);
  // ...and forgotten after it (memory stays bounded).
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
}

TEST_F(FaultManagerTest, FullApplyOnceGuardRefusesRatherThanForgets) {
  FaultManagerOptions options = options_;
  options.max_apply_once_ids = 2;
  options.apply_once_window = seconds(30);
  FaultManager manager(registry_, *journal_, clock_, options);
  for (const char* id : {"run1_0", "run1_1"}) {
    ASSERT_TRUE(manager.Apply(MakeRequest("run1", id)).ok());
    ASSERT_TRUE(manager.Revert(id, "request").ok());
  }
  EXPECT_EQ(manager.Apply(MakeRequest("run1", "run1_2")).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(manager.Apply(MakeRequest("run1", "run1_0")).status().code(),
            StatusCode::kFailedPrecondition);
  clock_.Advance(seconds(30));
  EXPECT_TRUE(manager.Apply(MakeRequest("run1", "run1_2")).ok());
}

TEST(FaultRegistryTest, ReportsMissingKindsWithReasons) {
  FaultRegistry registry;
  auto state = std::make_shared<FakeBackendState>();
  ASSERT_TRUE(registry.Register(std::make_unique<FakeBackend>(state)).ok());
  EXPECT_EQ(registry.Register(std::make_unique<FakeBackend>(state)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.CheckAvailable("dns").code(), StatusCode::kFailedPrecondition);

  Capabilities caps = registry.DetectAll();
  EXPECT_EQ(caps.available, std::vector<std::string>{"dns"});
  EXPECT_EQ(caps.missing.count("network"), 1u);
  EXPECT_EQ(caps.missing.count("dependency"), 1u);
  EXPECT_TRUE(registry.CheckAvailable("dns").ok());
  EXPECT_EQ(registry.Find("network"), nullptr);
}

TEST(FaultKindOfTest, NamesTheSpecCase) {
  v1::FaultSpec spec;
  EXPECT_EQ(FaultKindOf(spec), "");
  spec.mutable_dns();
  EXPECT_EQ(FaultKindOf(spec), "dns");
  spec.mutable_dependency();
  EXPECT_EQ(FaultKindOf(spec), "dependency");
}

}  // namespace
}  // namespace faultline::agent
