#include "agent/fault_manager.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->revert_status = Status::Ok();
  }
  clock_.Advance(options_.revert_retry);
  EXPECT_EQ(manager_->CheckLeases(), std::vector<std::string>{"run1_0"});
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_FALSE(Journaled("run1_0"));
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
