// The controller daemon in one process: a real ControllerService on 127.0.0.1:0 and agents that
// dial it through real ControllerLinks (FaultManager + a fake backend), plus an HTTP app the
// runs probe. Covers registration, heartbeat loss, label selection, halt during a run, retries
// that never double-apply, and an agent vanishing mid-run.
#include "controller/daemon/controller_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "agent/controller_link.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/journal.h"
#include "controller/daemon/agent_registry.h"
#include "controller/probes/probe_runner.h"
#include "tests/unit/agent/fake_backend.h"

namespace faultline::daemon {
namespace {

using agent::testing::FakeBackend;
using agent::testing::FakeBackendState;
using agent::testing::TempDir;
using namespace std::chrono_literals;

// Polls `condition` until it holds or `timeout` passes (an event wait with a deadline).
bool Eventually(const std::function<bool()>& condition, Duration timeout = 20s) {
  MonoTime give_up = SystemClock::Instance().Now() + timeout;
  while (!condition()) {
    if (SystemClock::Instance().Now() > give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// An agent process's pieces, attached to the controller through a ControllerLink.
struct TestAgent {
  TestAgent(const std::string& id, std::map<std::string, std::string> labels,
            const std::string& controller)
      : state(std::make_shared<FakeBackendState>()) {
    journal = std::move(agent::Journal::Open(dir.path() + "/journal")).value();
    EXPECT_TRUE(registry.Register(std::make_unique<FakeBackend>(state)).ok());
    registry.DetectAll();
    manager = std::make_unique<agent::FaultManager>(registry, *journal, SystemClock::Instance(),
                                                    agent::FaultManagerOptions{});
    manager->StartLeaseThread();
    agent::ControllerLinkOptions options;
    options.address = controller;
    options.credentials = grpc::InsecureChannelCredentials();
    options.min_backoff = 50ms;
    options.max_backoff = 200ms;
    link = std::make_unique<agent::ControllerLink>(
        *manager, registry, agent::AgentIdentity{id, std::move(labels)}, options);
    link->Start();
  }
  ~TestAgent() {
    link->Stop();
    manager->Shutdown();
  }
  std::vector<std::string> Applied() {
    std::lock_guard lock(state->mu);
    return state->applied;
  }
  std::vector<std::string> Reverted() {
    std::lock_guard lock(state->mu);
    return state->reverted;
  }

  TempDir dir;
  std::shared_ptr<FakeBackendState> state;
  agent::FaultRegistry registry;
  std::unique_ptr<agent::Journal> journal;
  std::unique_ptr<agent::FaultManager> manager;
  std::unique_ptr<agent::ControllerLink> link;
};

constexpr char kExperiment[] = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: daemon-test}
targets:
  east: {selector: {region: east}, mode: all}
faults:
  - name: dependency-dns
    target: east
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: DURATION
probes:
  - name: api
    http: {url: "URL", expect_status: 200, timeout: 500ms}
    interval: 100ms
steady_state: {probes: [api], for: 100ms}
objectives:
  - {name: available, probe: api, recover_within: 1m, stable_for: 100ms}
)";

class ControllerServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { probes::InitProbes(); }

  void SetUp() override {
    app_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    app_port_ = app_.bind_to_any_port("127.0.0.1");
    app_thread_ = std::thread([this] { app_.listen_after_bind(); });

    AgentRegistryOptions registry_options;
    registry_options.heartbeat_interval = 100ms;
    registry_ = std::make_unique<AgentRegistry>(registry_options);
    ControllerServiceOptions options;
    options.plaintext_allow_all = true;
    options.rpc_deadline = 2s;
    options.fanout_deadline = 2s;
    service_ = std::make_unique<ControllerService>(*registry_, options);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port_);
    stub_ =
        v1::Controller::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    agents_.clear();
    service_.reset();
    server_->Shutdown(std::chrono::system_clock::now() + 2s);
    registry_.reset();
    app_.stop();
    app_thread_.join();
  }

  TestAgent& AddAgent(const std::string& id, std::map<std::string, std::string> labels) {
    agents_.push_back(std::make_unique<TestAgent>(id, std::move(labels), address_));
    EXPECT_TRUE(registry_->AwaitLive(id, 20s)) << id << " never attached";
    return *agents_.back();
  }

  std::string Experiment(const std::string& duration) {
    std::string text = kExperiment;
    text.replace(text.find("DURATION"), 8, duration);
    text.replace(text.find("URL"), 3, "http://127.0.0.1:" + std::to_string(app_port_) + "/");
    return text;
  }

  // Submits over gRPC and reads the stream to its end.
  v1::RunSummary Submit(const std::string& text, grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    v1::SubmitRunRequest req;
    req.set_experiment_yaml(text);
    req.set_lease_ttl_ms(1000);
    auto reader = stub_->SubmitRun(&ctx, req);
    v1::RunEvent ev;
    v1::RunSummary summary;
    while (reader->Read(&ev)) {
      if (ev.has_finished()) summary = ev.finished();
    }
    grpc::Status s = reader->Finish();
    if (status) *status = s;
    return summary;
  }

  std::vector<v1::AgentRecord> ListAgents(std::map<std::string, std::string> selector = {},
                                          bool include_gone = false) {
    grpc::ClientContext ctx;
    v1::ListAgentsRequest req;
    req.mutable_selector()->insert(selector.begin(), selector.end());
    req.set_include_gone(include_gone);
    v1::ListAgentsResponse resp;
    EXPECT_TRUE(stub_->ListAgents(&ctx, req, &resp).ok());
    return {resp.agents().begin(), resp.agents().end()};
  }

  httplib::Server app_;
  int app_port_ = 0;
  std::thread app_thread_;
  std::unique_ptr<AgentRegistry> registry_;
  std::unique_ptr<ControllerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<v1::Controller::Stub> stub_;
  std::vector<std::unique_ptr<TestAgent>> agents_;
};

TEST_F(ControllerServiceTest, AgentRegistersWithLabelsAndCapabilities) {
  AddAgent("db-east-1", {{"region", "east"}, {"role", "db"}});
  auto agents = ListAgents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].info().agent_id(), "db-east-1");
  EXPECT_TRUE(agents[0].live());
  EXPECT_EQ(agents[0].info().labels().at("region"), "east");
  ASSERT_EQ(agents[0].info().capabilities_size(), 1);
  EXPECT_EQ(agents[0].info().capabilities(0), "dns");
}

TEST_F(ControllerServiceTest, ListAgentsFiltersBySelector) {
  AddAgent("db-east-1", {{"region", "east"}});
  AddAgent("db-west-1", {{"region", "west"}});
  auto east = ListAgents({{"region", "east"}});
  ASSERT_EQ(east.size(), 1u);
  EXPECT_EQ(east[0].info().agent_id(), "db-east-1");
  EXPECT_EQ(ListAgents().size(), 2u);
}

TEST_F(ControllerServiceTest, SilentAgentIsDroppedAfterMissedHeartbeats) {
  TestAgent& healthy = AddAgent("healthy", {});
  // A client that says Hello and then nothing: no heartbeat ever.
  grpc::ClientContext ctx;
  auto stream = stub_->Attach(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->mutable_info()->set_agent_id("silent");
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage welcome;
  ASSERT_TRUE(stream->Read(&welcome));
  ASSERT_TRUE(welcome.has_welcome());
  ASSERT_TRUE(registry_->AwaitLive("silent", 5s));

  auto live = [&](const std::string& id) {
    for (const auto& a : ListAgents({}, true)) {
      if (a.info().agent_id() == id) return a.live();
    }
    return false;
  };
  EXPECT_TRUE(Eventually([&] { return !live("silent"); })) << "silent agent still live";
  // The stream is cancelled by the controller.
  v1::ControllerMessage more;
  EXPECT_FALSE(stream->Read(&more));
  stream->Finish();
  // Negative control: the agent that heartbeats stays live all along.
  EXPECT_TRUE(live("healthy"));
  EXPECT_TRUE(healthy.link->attached());
}

// The registry visits only the sessions with a command due (not every session each sweep): a
// command nobody answers still fails at its deadline, and another one on the same stream with a
// later deadline is neither failed with it nor lost.
TEST_F(ControllerServiceTest, UnansweredCommandFailsAtItsDeadlineAndNotBefore) {
  grpc::ClientContext ctx;
  auto stream = stub_->Attach(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->mutable_info()->set_agent_id("slow");
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage in;
  ASSERT_TRUE(stream->Read(&in));
  ASSERT_TRUE(in.has_welcome());
  // Heartbeats, so that the agent stays live while it does not answer.
  std::atomic<bool> stop{false};
  std::mutex write_mu;
  std::thread beats([&] {
    while (!stop) {
      v1::AgentMessage beat;
      beat.mutable_heartbeat();
      {
        std::lock_guard lock(write_mu);
        if (!stream->Write(beat)) return;
      }
      std::this_thread::sleep_for(20ms);  // the heartbeat's period, not a synchronisation
    }
  });
  ASSERT_TRUE(registry_->AwaitLive("slow", 5s));

  std::promise<Result<v1::CommandResult>> early, late;
  v1::ControllerCommand info;
  info.mutable_get_info();
  const MonoTime sent = SystemClock::Instance().Now();
  registry_->Send("slow", info, 200ms,
                  [&](Result<v1::CommandResult> r) { early.set_value(std::move(r)); });
  registry_->Send("slow", info, 20s,
                  [&](Result<v1::CommandResult> r) { late.set_value(std::move(r)); });
  auto early_result = early.get_future();
  auto late_result = late.get_future();
  ASSERT_EQ(early_result.wait_for(10s), std::future_status::ready);
  Result<v1::CommandResult> expired = early_result.get();
  EXPECT_EQ(expired.status().code(), StatusCode::kDeadlineExceeded) << expired.status().ToString();
  EXPECT_GE(SystemClock::Instance().Now() - sent, 200ms);
  EXPECT_NE(late_result.wait_for(0ms), std::future_status::ready);

  // The later command is still waiting for its answer: give it.
  uint64_t late_id = 0;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(stream->Read(&in));
    ASSERT_TRUE(in.has_command());
    late_id = in.command().request_id();
  }
  v1::AgentMessage answer;
  answer.mutable_result()->set_request_id(late_id);
  answer.mutable_result()->mutable_info()->set_agent_id("slow");
  {
    std::lock_guard lock(write_mu);
    ASSERT_TRUE(stream->Write(answer));
  }
  ASSERT_EQ(late_result.wait_for(10s), std::future_status::ready);
  Result<v1::CommandResult> answered = late_result.get();
  ASSERT_TRUE(answered.ok()) << answered.status().ToString();
  EXPECT_EQ(answered->info().agent_id(), "slow");
  stop = true;
  ctx.TryCancel();
  beats.join();
  stream->Finish();
}

TEST_F(ControllerServiceTest, FirstMessageMustBeHello) {
  grpc::ClientContext ctx;
  auto stream = stub_->Attach(&ctx);
  v1::AgentMessage beat;
  beat.mutable_heartbeat();
  ASSERT_TRUE(stream->Write(beat));
  v1::ControllerMessage in;
  EXPECT_FALSE(stream->Read(&in));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(registry_->LiveCount(), 0u);
}

TEST_F(ControllerServiceTest, RunTargetsOnlyAgentsMatchingTheSelector) {
  TestAgent& east = AddAgent("db-east-1", {{"region", "east"}});
  TestAgent& west = AddAgent("db-west-1", {{"region", "west"}});
  v1::RunSummary run = Submit(Experiment("300ms"));
  EXPECT_EQ(run.verdict(), "PASS") << run.reason();
  EXPECT_EQ(east.Applied().size(), 1u);
  EXPECT_EQ(east.Reverted().size(), 1u);
  EXPECT_TRUE(west.Applied().empty());
  // The run is in the controller's history.
  grpc::ClientContext ctx;
  v1::GetRunRequest req;
  req.set_run_id(run.run_id());
  v1::RunSummary stored;
  ASSERT_TRUE(stub_->GetRun(&ctx, req, &stored).ok());
  EXPECT_EQ(stored.verdict(), "PASS");
  EXPECT_NE(stored.report_json().find("\"verdict\""), std::string::npos);
}

TEST_F(ControllerServiceTest, HaltDuringRunRevertsEveryFaultAndAbortsTheRun) {
  TestAgent& a = AddAgent("db-east-1", {{"region", "east"}});
  TestAgent& b = AddAgent("db-east-2", {{"region", "east"}});
  v1::RunSummary run;
  std::thread submitter([&] { run = Submit(Experiment("5m")); });
  ASSERT_TRUE(Eventually([&] { return a.Applied().size() == 1 && b.Applied().size() == 1; }));

  grpc::ClientContext ctx;
  v1::HaltRequest req;
  req.set_reason("test");
  v1::HaltResponse resp;
  ASSERT_TRUE(stub_->Halt(&ctx, req, &resp).ok());
  submitter.join();
  EXPECT_EQ(resp.agents(), 2u);
  EXPECT_EQ(resp.runs_cancelled(), 1u);
  EXPECT_TRUE(resp.failed().empty());
  EXPECT_EQ(run.verdict(), "ABORTED") << run.reason();
  EXPECT_EQ(run.exit_code(), 3);
  EXPECT_EQ(a.Reverted(), a.Applied());
  EXPECT_EQ(b.Reverted(), b.Applied());
  EXPECT_EQ(a.manager->ActiveCount() + b.manager->ActiveCount(), 0u);

  // Halted: no run starts until resume.
  grpc::Status refused;
  Submit(Experiment("300ms"), &refused);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(a.Applied().size(), 1u);
  grpc::ClientContext rctx;
  v1::ResumeResponse resumed;
  ASSERT_TRUE(stub_->Resume(&rctx, v1::ResumeRequest(), &resumed).ok());
  EXPECT_TRUE(resumed.was_halted());
  EXPECT_EQ(Submit(Experiment("300ms")).verdict(), "PASS");
}

TEST_F(ControllerServiceTest, HaltIsIdempotent) {
  AddAgent("db-east-1", {{"region", "east"}});
  for (int i = 0; i < 2; ++i) {
    HaltOutcome out = service_->HaltAll("twice");
    EXPECT_EQ(out.agents, 1u);
    EXPECT_TRUE(out.failed.empty());
  }
  EXPECT_TRUE(service_->halted());
}

TEST_F(ControllerServiceTest, RetriedApplyWithTheSameFaultIdAppliesOnce) {
  TestAgent& a = AddAgent("db-east-1", {{"region", "east"}});
  v1::ControllerCommand apply;
  apply.mutable_apply()->set_run_id("r1");
  apply.mutable_apply()->set_fault_id("r1_f0");
  apply.mutable_apply()->set_lease_ttl_ms(5000);
  apply.mutable_apply()->mutable_spec()->mutable_dns()->add_domains("db.example.test");
  apply.mutable_apply()->mutable_spec()->mutable_dns()->set_mode(v1::DnsFault::NODATA);
  for (int i = 0; i < 3; ++i) {
    auto r = registry_->Call("db-east-1", apply, 5s);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->code(), 0) << r->message();
  }
  EXPECT_EQ(a.Applied().size(), 1u);

  // The fleet view lists it; a halt reverts it.
  grpc::ClientContext ctx;
  v1::ListFleetFaultsResponse faults;
  ASSERT_TRUE(stub_->ListFaults(&ctx, v1::ListFleetFaultsRequest(), &faults).ok());
  ASSERT_EQ(faults.faults_size(), 1);
  EXPECT_EQ(faults.faults(0).agent_id(), "db-east-1");
  EXPECT_EQ(faults.faults(0).fault().fault_id(), "r1_f0");
  EXPECT_EQ(service_->HaltAll("test").faults_reverted, 1u);
  EXPECT_EQ(a.Reverted().size(), 1u);
}

TEST_F(ControllerServiceTest, CommandToAnUnknownAgentIsUnavailable) {
  v1::ControllerCommand list;
  list.mutable_list();
  auto r = registry_->Call("nobody", list, 50ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST_F(ControllerServiceTest, AgentVanishingMidRunMakesTheRunNeverPass) {
  TestAgent& a = AddAgent("db-east-1", {{"region", "east"}});
  v1::RunSummary run;
  std::thread submitter([&] { run = Submit(Experiment("5m")); });
  ASSERT_TRUE(Eventually([&] { return a.Applied().size() == 1; }));
  a.link->Stop();  // the agent is gone for the controller; its lease (1 s) reverts the fault
  submitter.join();
  EXPECT_EQ(run.verdict(), "ERROR") << run.reason();
  EXPECT_NE(run.exit_code(), 0);
  EXPECT_NE(run.report_json().find("unknown"), std::string::npos);
  EXPECT_TRUE(Eventually([&] { return a.manager->ActiveCount() == 0; }));
}

}  // namespace
}  // namespace faultline::daemon
