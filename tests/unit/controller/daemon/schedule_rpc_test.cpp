// The controller's store-backed RPCs over real gRPC (127.0.0.1:0, plaintext): schedules through
// the remote ScheduleService (what `faultline schedule ... --controller` uses), field validation
// by the controller, the shared history (ListRuns/GetRun/AnnotateRun), and the halt recorded in
// the store followed by a second controller on it.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "controller/daemon/agent_registry.h"
#include "controller/daemon/controller_service.h"
#include "controller/daemon/remote_schedule_service.h"
#include "controller/daemon/schedule_loop.h"
#include "controller/schedule/scheduler.h"
#include "tests/unit/controller/unmatched_experiment.h"

namespace faultline::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kExperiment = testing::UnmatchedExperiment("scheduled");

store::Schedule Valid(const std::string& name) {
  store::Schedule s;
  s.name = name;
  s.spec_yaml = kExperiment;
  s.cron = "30 2 * * 1-5";
  s.tz = "Europe/Berlin";
  s.concurrency = store::ConcurrencyPolicy::kAllow;
  s.window = "01:00-05:00";
  s.blackout_dates = {"2026-12-24", "2026-12-31"};
  return s;
}

// One controller (service + gRPC server) on a store.
struct Controller {
  Controller(store::RunStore* store, const std::string& id) {
    ControllerServiceOptions options;
    options.plaintext_allow_all = true;
    options.fanout_deadline = 1s;
    options.store = store;
    options.controller_id = id;
    options.command_probe_allowlist = {"true"};  // the schedule's probe runs `true` here
    service = std::make_unique<ControllerService>(registry, options);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service.get());
    server = builder.BuildAndStart();
    address = "127.0.0.1:" + std::to_string(port);
    stub =
        v1::Controller::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  ~Controller() {
    service.reset();
    server->Shutdown(std::chrono::system_clock::now() + 1s);
  }

  AgentRegistry registry{AgentRegistryOptions{}};
  std::unique_ptr<ControllerService> service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::string address;
  std::shared_ptr<v1::Controller::Stub> stub;
};

class ScheduleRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cs_rpc" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto s = store::OpenRunStore((dir_ / "h.db").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    controller_ = std::make_unique<Controller>(store_.get(), "ctl-a");
    remote_ = MakeRemoteScheduleService(controller_->stub, controller_->address);
  }
  void TearDown() override {
    remote_.reset();
    controller_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<schedule::ScheduleService> remote_;
};

TEST_F(ScheduleRpcTest, RemoteServiceAddsListsPausesRemovesAndListsFirings) {
  ASSERT_TRUE(remote_->Add(Valid("nightly")).ok());
  EXPECT_EQ(remote_->Add(Valid("nightly")).code(), StatusCode::kAlreadyExists);
  auto list = remote_->List();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  const store::Schedule& got = (*list)[0];
  EXPECT_EQ(got.name, "nightly");
  EXPECT_EQ(got.spec_yaml, kExperiment);
  EXPECT_EQ(got.cron, "30 2 * * 1-5");
  EXPECT_EQ(got.tz, "Europe/Berlin");
  EXPECT_EQ(got.concurrency, store::ConcurrencyPolicy::kAllow);
  EXPECT_EQ(got.window, "01:00-05:00");
  EXPECT_EQ(got.blackout_dates, (std::vector<std::string>{"2026-12-24", "2026-12-31"}));
  EXPECT_FALSE(got.paused);
  EXPECT_GT(got.created_unix_ms, 0);  // stamped by the controller's store

  ASSERT_TRUE(remote_->SetPaused("nightly", true).ok());
  ASSERT_TRUE(remote_->SetPaused("nightly", true).ok());  // idempotent
  EXPECT_TRUE((*remote_->List())[0].paused);
  EXPECT_TRUE((*store_->GetSchedule("nightly")).paused);  // the same store the scheduler reads
  EXPECT_EQ(remote_->SetPaused("absent", true).code(), StatusCode::kNotFound);

  ASSERT_TRUE(store_->RecordFiring({"nightly", 1000, 0, "skipped:halted", "", "ctl-a"}).ok());
  ASSERT_TRUE(store_->RecordFiring({"nightly", 2000, 0, "started", "run1", "ctl-b"}).ok());
  auto firings = remote_->Firings("nightly", 0);
  ASSERT_TRUE(firings.ok()) << firings.status().ToString();
  ASSERT_EQ(firings->size(), 2u);
  EXPECT_EQ((*firings)[0].outcome, "started");  // newest due time first
  EXPECT_EQ((*firings)[0].run_id, "run1");
  EXPECT_EQ((*firings)[0].holder, "ctl-b");
  EXPECT_EQ((*firings)[1].outcome, "skipped:halted");
  EXPECT_EQ(remote_->Firings("nightly", 1)->size(), 1u);

  ASSERT_TRUE(remote_->Remove("nightly").ok());
  EXPECT_TRUE(remote_->List()->empty());
  EXPECT_EQ(remote_->Remove("nightly").code(), StatusCode::kNotFound);
  EXPECT_EQ(remote_->Firings("nightly", 0)->size(), 2u);  // history stays
}

TEST_F(ScheduleRpcTest, TheControllerValidatesEveryFieldAndStoresNothingBad) {
  struct Case {
    std::function<void(store::Schedule&)> spoil;
    std::string field;  // the error names it
  };
  std::vector<Case> cases = {
      {[](store::Schedule& s) { s.name = "Bad Name"; }, "name"},
      {[](store::Schedule& s) { s.cron = "0 25 * * *"; }, "cron"},
      {[](store::Schedule& s) { s.cron = ""; }, "cron"},
      {[](store::Schedule& s) { s.tz = "Mars/Olympus"; }, "tz"},
      {[](store::Schedule& s) { s.window = "09:00-09:00"; }, "window"},
      {[](store::Schedule& s) { s.blackout_dates = {"2026-02-30"}; }, "blackout date"},
      {[](store::Schedule& s) { s.spec_yaml = "apiVersion: faultline/v1\nkind: Nope\n"; },
       "experiment_yaml"},
      {[](store::Schedule& s) { s.spec_yaml = ""; }, "experiment"},
  };
  for (const auto& c : cases) {
    store::Schedule s = Valid("spoiled");
    c.spoil(s);
    Status st = remote_->Add(s);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.field << ": " << st.ToString();
    EXPECT_NE(st.message().find(c.field), std::string::npos) << st.message();
  }
  // A policy the store does not know, sent as the wire allows.
  grpc::ClientContext ctx;
  v1::AddScheduleRequest req;
  req.mutable_schedule()->set_name("spoiled");
  req.mutable_schedule()->set_experiment_yaml(kExperiment);
  req.mutable_schedule()->set_cron("@daily");
  req.mutable_schedule()->set_concurrency("sometimes");
  v1::AddScheduleResponse resp;
  grpc::Status st = controller_->stub->AddSchedule(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("concurrency"), std::string::npos) << st.error_message();
  EXPECT_TRUE(store_->ListSchedules()->empty());
  // The control: the unspoiled schedule is accepted.
  EXPECT_TRUE(remote_->Add(Valid("spoiled")).ok());
}

TEST_F(ScheduleRpcTest, HistoryThroughTheControllerIsTheSharedStore) {
  // A run another controller recorded, and one of the CLI.
  store::RunRecord r;
  r.id = "abcdef123456";
  r.experiment = "scheduled";
  r.spec_yaml = kExperiment;
  r.started_unix_ms = 1'700'000'000'000;
  r.source = "schedule:nightly";
  r.owner = "ctl-b";
  ASSERT_TRUE(store_->CreateRun(r).ok());
  ASSERT_EQ(*store_->MarkInterrupted("ctl-b"), 1);
  r.id = "fedcba654321";
  r.experiment = "other";
  r.state = store::RunState::kFinished;
  r.verdict = "PASS";
  r.started_unix_ms += 1000;
  r.ended_unix_ms = r.started_unix_ms + 5000;
  r.source = "cli";
  ASSERT_TRUE(store_->CreateRun(r).ok());

  grpc::ClientContext list_ctx;
  v1::ListRunsRequest list_req;
  list_req.set_experiment("scheduled");
  v1::ListRunsResponse runs;
  ASSERT_TRUE(controller_->stub->ListRuns(&list_ctx, list_req, &runs).ok());
  ASSERT_EQ(runs.runs_size(), 1);
  EXPECT_EQ(runs.runs(0).run_id(), "abcdef123456");
  EXPECT_EQ(runs.runs(0).verdict(), "INTERRUPTED");
  EXPECT_EQ(runs.runs(0).state(), "interrupted");
  EXPECT_EQ(runs.runs(0).source(), "schedule:nightly");
  EXPECT_EQ(runs.runs(0).owner(), "ctl-b");

  grpc::ClientContext note_ctx;
  v1::AnnotateRunRequest note;
  note.set_run_id("abcd");  // a prefix
  note.set_author("oncall");
  note.set_text("paged the on-call");
  v1::RunAnnotation added;
  ASSERT_TRUE(controller_->stub->AnnotateRun(&note_ctx, note, &added).ok());
  EXPECT_EQ(added.run_id(), "abcdef123456");

  grpc::ClientContext get_ctx;
  v1::GetRunRequest get;
  get.set_run_id("abcd");
  v1::RunSummary run;
  ASSERT_TRUE(controller_->stub->GetRun(&get_ctx, get, &run).ok());
  EXPECT_EQ(run.run_id(), "abcdef123456");
  EXPECT_EQ(run.spec_yaml(), kExperiment);
  ASSERT_EQ(run.annotations_size(), 1);
  EXPECT_EQ(run.annotations(0).text(), "paged the on-call");
  EXPECT_EQ(run.annotations(0).author(), "oncall");

  grpc::ClientContext bad_ctx;
  note.set_text("");
  grpc::Status st = controller_->stub->AnnotateRun(&bad_ctx, note, &added);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("text"), std::string::npos);
  grpc::ClientContext missing_ctx;
  get.set_run_id("0000000000");
  EXPECT_EQ(controller_->stub->GetRun(&missing_ctx, get, &run).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ScheduleRpcTest, StoreRpcsWaitForTheStoreWorkerNotOnAHandlerThread) {
  // A slow store call holds the supervisor's store worker.
  RunSupervisor& supervisor = controller_->service->supervisor();
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(supervisor
                  .Post([&] {
                    started.set_value();
                    released.wait();
                  })
                  .ok());
  started.get_future().wait();

  // A history RPC meanwhile is queued behind it: its handler has returned without the store.
  grpc::ClientContext list_ctx;
  v1::ListRunsRequest list_req;
  v1::ListRunsResponse runs;
  std::promise<grpc::Status> answered;
  controller_->stub->async()->ListRuns(&list_ctx, &list_req, &runs,
                                       [&](grpc::Status s) { answered.set_value(s); });
  ASSERT_TRUE(supervisor.AwaitQueued(1, 10s));
  std::future<grpc::Status> answer = answered.get_future();

  // RPCs that need no store still answer while the store is busy.
  grpc::ClientContext agents_ctx;
  v1::ListAgentsRequest agents_req;
  v1::ListAgentsResponse agents;
  EXPECT_TRUE(controller_->stub->ListAgents(&agents_ctx, agents_req, &agents).ok());

  release.set_value();
  grpc::Status st = answer.get();
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(ScheduleRpcTest, AHaltGivenToOneControllerHaltsEveryControllerOnTheStore) {
  Controller b(store_.get(), "ctl-b");
  b.service->SyncHaltWithStore();
  EXPECT_FALSE(b.service->halted());  // control: nothing recorded yet
  controller_->service->HaltAll("test");
  EXPECT_TRUE(controller_->service->halted());
  b.service->SyncHaltWithStore();
  EXPECT_TRUE(b.service->halted());
  // A controller that starts during the halt halts at its first sync.
  Controller c(store_.get(), "ctl-c");
  c.service->SyncHaltWithStore();
  EXPECT_TRUE(c.service->halted());
  // Resumed on another controller than the one halted: lifted everywhere.
  EXPECT_TRUE(b.service->ResumeAll());
  controller_->service->SyncHaltWithStore();
  c.service->SyncHaltWithStore();
  EXPECT_FALSE(controller_->service->halted());
  EXPECT_FALSE(c.service->halted());
  EXPECT_FALSE(*schedule::HaltRecorded(*store_));
  // While halted, StartRun refuses (what the scheduler's launcher and SubmitRun use).
  b.service->HaltAll("again");
  RunRequest run;
  run.experiment_yaml = kExperiment;
  EXPECT_EQ(b.service->StartRun(run).status().code(), StatusCode::kFailedPrecondition);
}

// Polls `cond` until it holds (true) or 30 s pass (false); the loop under test ticks every 20 ms.
template <typename F>
bool Eventually(F cond) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST_F(ScheduleRpcTest, TheLoopStartsADueTimeOnceSkipsItWhileHaltedAndResignsOnStop) {
  // The scheduler reads due times from a FakeClock (wall time 2023-11-14 22:13:20 UTC); the
  // loop's own thread ticks in real time.
  FakeClock clock;
  store::Schedule every = Valid("every-minute");
  every.cron = "* * * * *";
  every.tz = "UTC";
  every.window.clear();
  every.blackout_dates.clear();
  every.created_unix_ms = clock.WallUnixMs();
  ASSERT_TRUE(store_->AddSchedule(every).ok());
  auto firings = [&] { return *store_->ListFirings("every-minute", 0); };  // newest first

  ScheduleLoopOptions options;
  options.tick = 20ms;
  options.scheduler.holder = "ctl-a";
  options.scheduler.lease_ttl = 10s;
  options.scheduler.start_deadline = 30s;
  ASSERT_TRUE(ValidateScheduleLoopOptions(options).ok());
  ScheduleLoop loop(*controller_->service, *store_, clock, options);

  // Leader at its first pass: another controller's scheduler is not (the control for Stop).
  schedule::SchedulerOptions other_options;
  other_options.holder = "ctl-b";
  schedule::Scheduler other(
      *store_, clock,
      [](const store::Schedule&, int64_t) -> Result<std::string> { return Internal("not here"); },
      other_options);
  ASSERT_TRUE(Eventually([&] {
    auto lead = store_->CurrentLeader("scheduler");
    return lead.ok() && lead->has_value() && (*lead)->holder == "ctl-a";
  }));
  EXPECT_FALSE(other.Tick()->leader);

  // 22:14:00 becomes due: started once, by this controller, through StartRun.
  clock.Advance(41s);
  // The due time is claimed (recorded) before its run starts, and the run id added after.
  ASSERT_TRUE(Eventually([&] {
    auto f = firings();
    return !f.empty() && (f[0].outcome != "started" || !f[0].run_id.empty());
  }));
  store::Firing first = firings()[0];
  EXPECT_EQ(first.outcome, "started");
  EXPECT_EQ(first.holder, "ctl-a");
  EXPECT_EQ(first.due_unix_ms, every.created_unix_ms + 40'000);
  ASSERT_FALSE(first.run_id.empty());
  auto run = store_->GetRun(first.run_id);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->run.source, "schedule:every-minute");
  EXPECT_EQ(run->run.owner, "ctl-a");

  // Halted (through the store, as `faultline halt` on any controller): 22:15:00 is recorded
  // skipped:halted, and 22:14:00 was not decided twice in the ticks between.
  controller_->service->HaltAll("test");
  clock.Advance(60s);
  ASSERT_TRUE(Eventually([&] { return firings().size() >= 2; }));
  auto both = firings();
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].outcome, "skipped:halted");
  EXPECT_EQ(both[0].due_unix_ms, first.due_unix_ms + 60'000);
  EXPECT_TRUE(both[0].run_id.empty());
  EXPECT_EQ(both[1].run_id, first.run_id);
  EXPECT_TRUE(controller_->service->ResumeAll());

  // Stop gives the lease up: the other controller leads at once, not after the 10 s TTL.
  loop.Stop();
  EXPECT_TRUE(other.Tick()->leader);
}

TEST(ScheduleRpcNoStoreTest, StoreOnlyRpcsAreRefusedWithoutAStore) {
  Controller bare(nullptr, "ctl-none");
  auto remote = MakeRemoteScheduleService(bare.stub, bare.address);
  Status st = remote->Add(Valid("nightly"));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("no store"), std::string::npos);
  EXPECT_EQ(remote->List().status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace faultline::daemon
