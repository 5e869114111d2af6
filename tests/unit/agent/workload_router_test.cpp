// WorkloadRouter and FaultManager with workloads: a host fault goes to the host backend; a
// workload fault is applied, reverted and recovered by an instance made inside the workload's
// network namespace, never on the host; a path that names another namespace is refused; a
// journaled fault whose namespace is gone is reported gone with its workload, not failed.
// The namespace tests need root (skipped otherwise); the gone-namespace test does not.
#include "agent/workload_router.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/host/netns_thread.h"
#include "agent/journal.h"
#include "agent/workloads/netns_identity.h"
#include "common/clock.h"
#include "tests/unit/agent/fake_backend.h"
#include "tests/unit/agent/host/throwaway_netns.h"

namespace faultline::agent {
namespace {

using host::NetnsIdentity;
using host::testing::ThrowawayNetns;
using testing::FakeBackend;
using testing::FakeBackendState;

// What an instance saw: the namespace of the thread each call ran on.
struct Seen {
  std::mutex mu;
  std::vector<NetnsIdentity> made, applied, reverted, orphans;
  void Add(std::vector<NetnsIdentity>& v) {
    auto id = host::CurrentThreadNetns();
    std::lock_guard lock(mu);
    v.push_back(id.ok() ? *id : NetnsIdentity{});
  }
};

// A FakeBackend that records the namespace its calls run in.
class RecordingHandle final : public FaultHandle {
 public:
  explicit RecordingHandle(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  Status Revert() override {
    seen_->Add(seen_->reverted);
    return Status::Ok();
  }
  Evidence GetEvidence() const override { return {{"queries_faulted", 7}}; }

 private:
  std::shared_ptr<Seen> seen_;
};

// Instances alive now, and the most that were ever alive at once.
struct Lives {
  std::atomic<int> now{0};
  std::atomic<int> most{0};
};

class RecordingBackend final : public FaultBackend {
 public:
  explicit RecordingBackend(std::shared_ptr<Seen> seen, std::shared_ptr<Lives> lives = nullptr)
      : seen_(std::move(seen)), lives_(std::move(lives)) {
    if (!lives_) return;
    const int n = ++lives_->now;
    int most = lives_->most.load();
    while (n > most && !lives_->most.compare_exchange_weak(most, n)) {
    }
  }
  ~RecordingBackend() override {
    if (lives_) --lives_->now;
  }
  std::string Kind() const override { return "dns"; }
  Status DetectCapability() override { return Status::Ok(); }
  Status Validate(const v1::FaultSpec&) const override { return Status::Ok(); }
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string&, const v1::FaultSpec&) override {
    seen_->Add(seen_->applied);
    return std::unique_ptr<FaultHandle>(std::make_unique<RecordingHandle>(seen_));
  }
  Status RevertOrphan(const std::string&, const v1::FaultSpec&) override {
    seen_->Add(seen_->orphans);
    return Status::Ok();
  }

 private:
  std::shared_ptr<Seen> seen_;
  std::shared_ptr<Lives> lives_;
};

workloads::Workload WorkloadAt(const std::string& path, NetnsIdentity id) {
  workloads::Workload w;
  w.kind = workloads::WorkloadKind::kNetns;
  w.id = w.name = w.netns_path = path;
  w.netns = id;
  return w;
}

v1::Workload ProtoOf(const workloads::Workload& w) {
  v1::Workload p;
  p.set_kind(workloads::WorkloadKindName(w.kind));
  p.set_runtime(w.runtime);
  p.set_id(w.id);
  for (pid_t pid : w.pids) p.add_pids(static_cast<uint32_t>(pid));
  p.set_netns_path(w.netns_path);
  p.set_netns_dev(w.netns.dev);
  p.set_netns_ino(w.netns.ino);
  return p;
}

class WorkloadRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_unique<WorkloadRouter>(
        std::make_unique<FakeBackend>(host_state_),
        [seen = seen_, lives = lives_](const workloads::Workload&) -> Result<NetnsBackend> {
          seen->Add(seen->made);
          return NetnsBackend{std::make_unique<RecordingBackend>(seen, lives), nullptr};
        });
    router_ = router.get();
    ASSERT_TRUE(registry_.Register(std::move(router)).ok());
    registry_.DetectAll();
    auto journal = Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok());
    journal_ = std::move(*journal);
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, FaultManagerOptions{});
  }
  void NeedRoot() {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (setns)";
    ns_ = std::make_unique<ThrowawayNetns>();
    ASSERT_FALSE(ns_->path().empty());
    auto id = workloads::StatNetns(ns_->path());
    ASSERT_TRUE(id.ok());
    ns_id_ = *id;
  }

  testing::TempDir dir_;
  std::shared_ptr<FakeBackendState> host_state_ = std::make_shared<FakeBackendState>();
  std::shared_ptr<Seen> seen_ = std::make_shared<Seen>();
  std::shared_ptr<Lives> lives_ = std::make_shared<Lives>();
  FaultRegistry registry_;
  WorkloadRouter* router_ = nullptr;
  std::unique_ptr<Journal> journal_;
  SystemClock clock_;
  std::unique_ptr<FaultManager> manager_;
  std::unique_ptr<ThrowawayNetns> ns_;
  NetnsIdentity ns_id_;
};

TEST_F(WorkloadRouterTest, AHostFaultGoesToTheHostBackendAndEntersNoNamespace) {
  ASSERT_TRUE(manager_->Apply(testing::MakeRequest("r1", "f1")).ok());
  EXPECT_EQ(host_state_->applied, std::vector<std::string>{"f1"});
  EXPECT_TRUE(seen_->made.empty());
  EXPECT_EQ(router_->namespaces(), 0u);
}

TEST_F(WorkloadRouterTest, AWorkloadFaultIsAppliedAndRevertedInsideItsNamespaceOnly) {
  NeedRoot();
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), ns_id_));
  auto applied = manager_->Apply(req);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(host_state_->applied.empty()) << "the host backend applied a workload's fault";
  ASSERT_EQ(seen_->made.size(), 1u);
  EXPECT_EQ(seen_->made[0], ns_id_);
  ASSERT_EQ(seen_->applied.size(), 1u);
  EXPECT_EQ(seen_->applied[0], ns_id_);
  EXPECT_EQ(router_->namespaces(), 1u);
  auto reverted = manager_->Revert("f1", "request");
  ASSERT_TRUE(reverted.ok()) << reverted.status().ToString();
  ASSERT_EQ(seen_->reverted.size(), 1u);
  EXPECT_EQ(seen_->reverted[0], ns_id_);
  EXPECT_EQ((*reverted)->evidence().at("queries_faulted"), 7u);
  EXPECT_EQ((*reverted)->evidence().at("workload_exited"), 0u);
  EXPECT_EQ(router_->namespaces(), 0u) << "the namespace is still held after its last fault";
}

// A revert hands the namespace's instance to the router's reaper (dropping it is off the revert's
// path); a fault applied right after in the same namespace gets a new instance only once the old
// one is gone: a namespace never has two instances at once.
TEST_F(WorkloadRouterTest, ANamespaceNeverHasTwoInstancesAcrossRevertAndReapply) {
  NeedRoot();
  for (int i = 0; i < 20; ++i) {
    const std::string id = "f" + std::to_string(i);
    auto req = testing::MakeRequest("r1", id);
    *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), ns_id_));
    auto applied = manager_->Apply(req);
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    auto reverted = manager_->Revert(id, "request");
    ASSERT_TRUE(reverted.ok()) << reverted.status().ToString();
  }
  EXPECT_EQ(seen_->made.size(), 20u);
  EXPECT_EQ(seen_->reverted.size(), 20u);
  EXPECT_EQ(lives_->most.load(), 1) << "two instances of one namespace were alive at once";
  EXPECT_EQ(router_->namespaces(), 0u);
}

TEST_F(WorkloadRouterTest, AWorkloadThatExitsDuringTheFaultIsRevertedAndReported) {
  NeedRoot();
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), ns_id_));
  ASSERT_TRUE(manager_->Apply(req).ok());
  ns_->Release();  // the workload exits: its namespace path is gone
  auto reverted = manager_->Revert("f1", "request");
  ASSERT_TRUE(reverted.ok()) << reverted.status().ToString();
  EXPECT_EQ((*reverted)->evidence().at("workload_exited"), 1u);
  ASSERT_EQ(seen_->reverted.size(), 1u);
  EXPECT_EQ(seen_->reverted[0], ns_id_);
}

TEST_F(WorkloadRouterTest, APathNamingAnotherNamespaceIsRefusedAndNothingApplied) {
  NeedRoot();
  auto home = host::CurrentThreadNetns();
  ASSERT_TRUE(home.ok());
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), *home));
  auto applied = manager_->Apply(req);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), StatusCode::kFailedPrecondition)
      << applied.status().ToString();
  EXPECT_TRUE(seen_->applied.empty());
  EXPECT_TRUE(host_state_->applied.empty());
}

TEST_F(WorkloadRouterTest, RecoveryRevertsAJournaledWorkloadFaultInsideItsNamespace) {
  NeedRoot();
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), ns_id_));
  ASSERT_TRUE(journal_->Record(req).ok());
  RecoveryReport report = manager_->Recover();
  EXPECT_EQ(report.reverted, std::vector<std::string>{"f1"});
  EXPECT_TRUE(report.failed.empty());
  EXPECT_TRUE(report.gone_with_workload.empty());
  ASSERT_EQ(seen_->orphans.size(), 1u);
  EXPECT_EQ(seen_->orphans[0], ns_id_);
  EXPECT_TRUE(host_state_->orphans_reverted.empty());
}

TEST_F(WorkloadRouterTest, ARestartedWorkloadGetsTheFaultAgainOnItsNewInstance) {
  NeedRoot();
  ThrowawayNetns restarted;
  auto restarted_id = workloads::StatNetns(restarted.path());
  ASSERT_TRUE(restarted_id.ok());
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), ns_id_));
  ASSERT_TRUE(manager_->Apply(req).ok());
  // Negative control: the same instance resolved again moves nothing.
  EXPECT_EQ(router_->CheckRestarts(ResolveByNetnsPath), 0);
  // The workload now runs in another namespace (as discovery would resolve it by id).
  auto now_there = [&](const workloads::Workload&) -> Result<workloads::Workload> {
    return WorkloadAt(restarted.path(), *restarted_id);
  };
  EXPECT_EQ(router_->CheckRestarts(now_there), 1);
  ASSERT_EQ(seen_->applied.size(), 2u);
  EXPECT_EQ(seen_->applied[1], *restarted_id);
  ASSERT_EQ(seen_->reverted.size(), 1u);
  EXPECT_EQ(seen_->reverted[0], ns_id_) << "the old instance's fault was not reverted first";
  EXPECT_EQ(router_->namespaces(), 1u);
  auto reverted = manager_->Revert("f1", "request");
  ASSERT_TRUE(reverted.ok());
  ASSERT_EQ(seen_->reverted.size(), 2u);
  EXPECT_EQ(seen_->reverted[1], *restarted_id);
  EXPECT_EQ((*reverted)->evidence().at("workload_restarts"), 1u);
  EXPECT_EQ((*reverted)->evidence().at("queries_faulted"), 14u) << "counts of both instances";
  EXPECT_EQ(router_->namespaces(), 0u);
}

TEST_F(WorkloadRouterTest, AContainerRestartedInANamespaceThatOutlivesItGetsTheFaultAgain) {
  NeedRoot();
  workloads::Workload first = WorkloadAt(ns_->path(), ns_id_);
  first.kind = workloads::WorkloadKind::kContainer;
  first.runtime = "docker";
  first.id = "c0ffee";
  first.pids = {4242};
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(first);
  ASSERT_TRUE(manager_->Apply(req).ok());
  // Negative control: the same init process in the same namespace is the same instance.
  auto same = [&](const workloads::Workload&) -> Result<workloads::Workload> { return first; };
  EXPECT_EQ(router_->CheckRestarts(same), 0);
  // The runtime restarted the container: a new init process, the same namespace.
  workloads::Workload second = first;
  second.pids = {4343};
  auto restarted = [&](const workloads::Workload&) -> Result<workloads::Workload> {
    return second;
  };
  EXPECT_EQ(router_->CheckRestarts(restarted), 1);
  ASSERT_EQ(seen_->applied.size(), 2u);
  EXPECT_EQ(seen_->applied[1], ns_id_);
  ASSERT_EQ(seen_->reverted.size(), 1u) << "the old instance's fault was not reverted first";
  EXPECT_EQ(router_->CheckRestarts(restarted), 0) << "the same restart followed twice";
  auto reverted = manager_->Revert("f1", "request");
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)->evidence().at("workload_restarts"), 1u);
  EXPECT_EQ(router_->namespaces(), 0u);
}

TEST_F(WorkloadRouterTest, AWorkloadThatCannotBeResolvedAnyMoreIsReportedExited) {
  NeedRoot();
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(WorkloadAt(ns_->path(), ns_id_));
  ASSERT_TRUE(manager_->Apply(req).ok());
  auto gone = [](const workloads::Workload&) -> Result<workloads::Workload> {
    return NotFound("no such container");
  };
  EXPECT_EQ(router_->CheckRestarts(gone), 0);
  auto status = manager_->Revert("f1", "request");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)->evidence().at("workload_exited"), 1u);
  EXPECT_EQ((*status)->evidence().at("workload_restarts"), 0u);
}

TEST_F(WorkloadRouterTest, AJournaledFaultWhoseNamespaceIsGoneIsReportedGoneNotFailed) {
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() =
      ProtoOf(WorkloadAt("/run/netns/fl-unit-gone-workload", NetnsIdentity{4, 4026532999}));
  ASSERT_TRUE(journal_->Record(req).ok());
  RecoveryReport report = manager_->Recover();
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(report.gone_with_workload, std::vector<std::string>{"f1"});
  EXPECT_TRUE(journal_->LoadAll().entries.empty()) << "the record of a gone workload stays";
  EXPECT_TRUE(host_state_->orphans_reverted.empty()) << "reverted on the host instead";
}

// A fault whose kind does not follow restarts (a one-shot kill): the restart is counted, the
// fault is neither reverted nor applied again (the control above: a following kind re-applies).
TEST_F(WorkloadRouterTest, AFaultThatDoesNotFollowRestartsOnlyCountsThem) {
  NeedRoot();
  host_state_->follows_restarts = false;
  workloads::Workload first = WorkloadAt(ns_->path(), ns_id_);
  first.kind = workloads::WorkloadKind::kContainer;
  first.runtime = "docker";
  first.id = "c0ffee";
  first.pids = {4242};
  auto req = testing::MakeRequest("r1", "f1");
  *req.mutable_resolved_workload() = ProtoOf(first);
  ASSERT_TRUE(manager_->Apply(req).ok());
  workloads::Workload second = first;
  second.pids = {4343};
  auto restarted = [&](const workloads::Workload&) -> Result<workloads::Workload> {
    return second;
  };
  EXPECT_EQ(router_->CheckRestarts(restarted), 0);
  EXPECT_EQ(seen_->applied.size(), 1u) << "applied again to the restarted instance";
  EXPECT_TRUE(seen_->reverted.empty());
  EXPECT_EQ(router_->CheckRestarts(restarted), 0);
  auto reverted = manager_->Revert("f1", "request");
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)->evidence().at("workload_restarts"), 1u)
      << "the same restart counted twice";
}

}  // namespace
}  // namespace faultline::agent
