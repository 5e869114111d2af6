// RunSupervisor without gRPC: a fake Fleet and a real SQLite store in a temporary directory.
// Runs started and recorded, halts fanned out and recorded for other controllers, the store
// worker's queue (order, bound, off the caller's thread), and the store-only calls.
#include "controller/daemon/run_supervisor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "controller/schedule/scheduler.h"
#include "tests/unit/controller/unmatched_experiment.h"

namespace faultline::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kExperiment = testing::UnmatchedExperiment("supervised");

// Agents that answer commands as a test says. No agent carries role=db, so a run of
// kExperiment ends in ERROR at target resolution without connecting to any agent.
class FakeFleet : public Fleet {
 public:
  using Answer = std::function<Result<v1::CommandResult>(const std::string& id, int call)>;

  FakeFleet(std::vector<std::string> ids, Answer answer)
      : ids_(std::move(ids)), answer_(std::move(answer)) {}

  engine::Inventory LiveInventory() override {
    engine::Inventory inv;
    for (const auto& id : ids_) {
      engine::AgentEndpoint ep;
      ep.name = id;
      ep.address = id + ":7070";
      ep.labels = {{"role", "app"}};
      inv.agents.push_back(ep);
    }
    return inv;
  }
  std::shared_ptr<engine::AgentConnection> Connect(const engine::AgentEndpoint&) override {
    ADD_FAILURE() << "no run in these tests reaches an agent";
    return nullptr;
  }
  std::vector<std::string> LiveAgentIds() override { return ids_; }
  std::vector<Result<v1::CommandResult>> Broadcast(const std::vector<std::string>& ids,
                                                   const v1::ControllerCommand& command,
                                                   Duration) override {
    std::vector<Result<v1::CommandResult>> out;
    std::lock_guard lock(mu_);
    for (const auto& id : ids) {
      commands_.push_back(command);
      out.push_back(answer_(id, ++calls_[id]));
    }
    return out;
  }
  bool AwaitLive(const std::string& id, Duration) override { return live_again_.count(id) > 0; }

  int calls(const std::string& id) {
    std::lock_guard lock(mu_);
    return calls_[id];
  }
  std::set<std::string> live_again_;

 private:
  std::vector<std::string> ids_;
  Answer answer_;
  std::mutex mu_;
  std::map<std::string, int> calls_;
  std::vector<v1::ControllerCommand> commands_;
};

RunRequest Request(const std::string& yaml) {
  RunRequest r;
  r.experiment_yaml = yaml;
  return r;
}

v1::CommandResult Reverted(int n) {
  v1::CommandResult r;
  for (int i = 0; i < n; ++i) r.mutable_revert_all()->add_reverted();
  return r;
}

class RunSupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("run_sup" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto s = store::OpenRunStore((dir_ / "h.db").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  RunSupervisorOptions Options(const std::string& id = "ctl-a") {
    RunSupervisorOptions o;
    o.store = store_.get();
    o.controller_id = id;
    o.fanout_deadline = 2s;
    o.command_probe_allowlist = {"true"};  // the experiment's probe runs `true` on the controller
    return o;
  }

  fs::path dir_;
  std::unique_ptr<store::RunStore> store_;
  FakeFleet no_agents_{{}, [](const std::string&, int) { return v1::CommandResult(); }};
};

TEST_F(RunSupervisorTest, InvalidExperimentIsRefusedAndNothingIsRecorded) {
  RunSupervisor sup(no_agents_, Options());
  Result<std::string> id = sup.StartRun(Request("kind: Nonsense\n"));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("nothing was applied"), std::string::npos);
  auto runs = store_->ListRuns({});
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());
}

TEST_F(RunSupervisorTest, RunIsRecordedWhenStartedAndFinishedWithItsVerdict) {
  RunSupervisor sup(no_agents_, Options());
  std::promise<v1::RunSummary> finished;
  RunRequest req;
  req.experiment_yaml = kExperiment;
  req.source = "schedule:nightly";
  req.on_finished = [&](v1::RunSummary s) { finished.set_value(std::move(s)); };
  Result<std::string> id = sup.StartRun(std::move(req));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // Recorded before StartRun returned (what the scheduler's launcher relies on).
  auto stored = store_->GetRun(*id);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->run.owner, "ctl-a");
  EXPECT_EQ(stored->run.source, "schedule:nightly");

  v1::RunSummary summary = finished.get_future().get();
  // No agent matches role=db: the run is an infrastructure error, exit code 4.
  EXPECT_EQ(summary.verdict(), "ERROR");
  EXPECT_EQ(summary.exit_code(), 4);
  EXPECT_NE(summary.reason().find("no agent"), std::string::npos) << summary.reason();
  stored = store_->GetRun(*id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->run.state, store::RunState::kFinished);
  EXPECT_EQ(stored->run.verdict, "ERROR");

  Result<v1::RunSummary> got = sup.GetRun(*id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->verdict(), "ERROR");
  EXPECT_FALSE(got->report_text().empty());  // this process's run carries its text report
  EXPECT_FALSE(sup.CancelRun(*id, "too late"));
}

TEST_F(RunSupervisorTest, HaltRefusesRunsUntilResumeAndIsRecordedInTheStore) {
  RunSupervisor sup(no_agents_, Options());
  sup.HaltAll("test");
  EXPECT_TRUE(sup.halted());
  Result<std::string> id = sup.StartRun(Request(kExperiment));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  auto recorded = schedule::HaltRecorded(*store_);
  ASSERT_TRUE(recorded.ok());
  EXPECT_TRUE(*recorded);

  EXPECT_TRUE(sup.ResumeAll());
  EXPECT_FALSE(sup.halted());
  EXPECT_FALSE(*schedule::HaltRecorded(*store_));
  EXPECT_FALSE(sup.ResumeAll());  // nothing in force any more
}

TEST_F(RunSupervisorTest, HaltRevertsOnEveryLiveAgentAndNamesTheOnesThatFailed) {
  FakeFleet fleet({"a", "b", "c"}, [](const std::string& id, int) -> Result<v1::CommandResult> {
    if (id == "a") return Reverted(2);
    if (id == "b") {
      v1::CommandResult r;
      r.set_code(static_cast<int>(StatusCode::kInternal));
      r.set_message("nft: boom");
      return r;
    }
    return Unavailable("stream broke");  // c: gone for good (not live again)
  });
  RunSupervisor sup(fleet, Options());
  HaltOutcome out = sup.HaltAll("test");
  EXPECT_EQ(out.agents, 3u);
  EXPECT_EQ(out.faults_reverted, 2u);
  std::map<std::string, std::string> failed(out.failed.begin(), out.failed.end());
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed["b"], "nft: boom");
  EXPECT_EQ(failed["c"], "stream broke");
  EXPECT_EQ(fleet.calls("b"), 1);  // an agent's own error is not retried
  EXPECT_EQ(fleet.calls("c"), 1);  // nor an agent that is not live again
}

TEST_F(RunSupervisorTest, HaltRetriesAnAgentWhoseStreamBrokeAndCameBack) {
  FakeFleet fleet({"a"}, [](const std::string&, int call) -> Result<v1::CommandResult> {
    if (call == 1) return Unavailable("stream broke");
    return Reverted(1);
  });
  fleet.live_again_ = {"a"};
  RunSupervisor sup(fleet, Options());
  HaltOutcome out = sup.HaltAll("test");
  EXPECT_TRUE(out.failed.empty());
  EXPECT_EQ(out.faults_reverted, 1u);
  EXPECT_EQ(fleet.calls("a"), 2);
}

TEST_F(RunSupervisorTest, AnotherControllerOnTheStoreFollowsTheHaltAndTheResume) {
  RunSupervisor a(no_agents_, Options("ctl-a"));
  RunSupervisor b(no_agents_, Options("ctl-b"));
  b.SyncHaltWithStore();
  EXPECT_FALSE(b.halted());
  a.HaltAll("test");
  b.SyncHaltWithStore();
  EXPECT_TRUE(b.halted());
  EXPECT_EQ(b.StartRun(Request(kExperiment)).status().code(), StatusCode::kFailedPrecondition);
  a.ResumeAll();
  b.SyncHaltWithStore();
  EXPECT_FALSE(b.halted());
}

TEST_F(RunSupervisorTest, FleetFaultsListsEveryAgentsFaultsAndTheUnreachable) {
  FakeFleet fleet({"a", "b"}, [](const std::string& id, int) -> Result<v1::CommandResult> {
    if (id == "b") return DeadlineExceeded("no answer");
    v1::CommandResult r;
    r.mutable_list()->add_faults()->set_fault_id("f-1");
    r.mutable_list()->add_faults()->set_fault_id("f-2");
    return r;
  });
  RunSupervisor sup(fleet, Options());
  v1::ListFleetFaultsResponse out = sup.FleetFaults(false);
  ASSERT_EQ(out.faults_size(), 2);
  EXPECT_EQ(out.faults(0).agent_id(), "a");
  EXPECT_EQ(out.faults(1).fault().fault_id(), "f-2");
  ASSERT_EQ(out.unreachable_size(), 1);
  EXPECT_EQ(out.unreachable(0).agent_id(), "b");
  EXPECT_EQ(out.unreachable(0).error(), "no answer");
}

TEST_F(RunSupervisorTest, PostedTasksRunInOrderOnTheStoreWorkerNotOnTheCaller) {
  RunSupervisor sup(no_agents_, Options());
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::promise<void> last;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(sup.Post([&, i] {
                     std::lock_guard lock(mu);
                     order.push_back(i);
                     threads.push_back(std::this_thread::get_id());
                     if (i == 4) last.set_value();
                   })
                    .ok());
  }
  last.get_future().wait();
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  for (const auto& t : threads) {
    EXPECT_NE(t, std::this_thread::get_id());
    EXPECT_EQ(t, threads[0]);  // one worker: store calls are serialised there
  }
}

TEST_F(RunSupervisorTest, PostRefusesWhenTheQueueIsFullAndRunsWhatItQueued) {
  RunSupervisorOptions o = Options();
  o.max_queued = 2;
  RunSupervisor sup(no_agents_, o);
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(sup.Post([&] {
                   started.set_value();
                   released.wait();  // a slow store call
                 })
                  .ok());
  started.get_future().wait();  // the worker is busy; the queue is empty
  std::promise<void> a_done, b_done;
  ASSERT_TRUE(sup.Post([&] { a_done.set_value(); }).ok());
  ASSERT_TRUE(sup.Post([&] { b_done.set_value(); }).ok());
  bool third_ran = false;
  Status third = sup.Post([&] { third_ran = true; });
  EXPECT_EQ(third.code(), StatusCode::kResourceExhausted);
  release.set_value();
  a_done.get_future().wait();
  b_done.get_future().wait();
  EXPECT_FALSE(third_ran);
}

TEST_F(RunSupervisorTest, DestructionStillRunsWhatWasQueued) {
  auto sup = std::make_unique<RunSupervisor>(no_agents_, Options());
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(sup->Post([&] {
                   started.set_value();
                   released.wait();
                 })
                  .ok());
  started.get_future().wait();
  bool queued_ran = false;
  ASSERT_TRUE(sup->Post([&] { queued_ran = true; }).ok());
  // Destroy while the worker is still busy: the queued task (which would finish an RPC) must run.
  std::thread destroyer([&] { sup.reset(); });
  release.set_value();
  destroyer.join();
  EXPECT_TRUE(queued_ran);
}

TEST_F(RunSupervisorTest, StoreOnlyCallsWithoutAStoreAreFailedPrecondition) {
  RunSupervisorOptions o;
  RunSupervisor sup(no_agents_, o);
  EXPECT_EQ(sup.AnnotateRun("r", "", "note", "me").status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(sup.AddSchedule(v1::Schedule(), "me").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sup.ListSchedules().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sup.RemoveSchedule("x", "me").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sup.PauseSchedule("x", true).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sup.ListFirings("", 10).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sup.GetRun("nope").status().code(), StatusCode::kNotFound);
  auto runs = sup.ListRuns("", 0);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->runs_size(), 0);
}

TEST_F(RunSupervisorTest, AnnotateRunValidatesItsFieldsAndAttributesToTheCaller) {
  RunSupervisor sup(no_agents_, Options());
  std::promise<v1::RunSummary> finished;
  RunRequest req;
  req.experiment_yaml = kExperiment;
  req.on_finished = [&](v1::RunSummary s) { finished.set_value(std::move(s)); };
  Result<std::string> id = sup.StartRun(std::move(req));
  ASSERT_TRUE(id.ok());
  finished.get_future().wait();

  EXPECT_EQ(sup.AnnotateRun("", "", "x", "me").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sup.AnnotateRun(*id, "", "", "me").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sup.AnnotateRun(*id, "", std::string(4097, 'x'), "me").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(sup.AnnotateRun(*id, std::string(257, 'a'), "x", "me").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(sup.AnnotateRun("no-such-run", "", "x", "me").status().code(), StatusCode::kNotFound);
  auto note = sup.AnnotateRun(*id, "", "failover took the west path", "operator-1");
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ(note->author(), "operator-1");
  Result<v1::RunSummary> got = sup.GetRun(*id);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->annotations_size(), 1);
  EXPECT_EQ(got->annotations(0).text(), "failover took the west path");
}

}  // namespace
}  // namespace faultline::daemon
