// RunEngine end to end in one process: a real agent (FaultManager + AgentService over gRPC on
// 127.0.0.1:0) whose backend switches a small HTTP application into "dependency failed" mode, and
// the engine probing that application over HTTP. The application's failover behaviour is scripted
// by sample count, so verdicts and measurements are deterministic without timing assertions.
#include "controller/engine/run_engine.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/agent_service.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/journal.h"
#include "controller/experiment/parser.h"
#include "controller/probes/probe_runner.h"
#include "tests/unit/agent/fake_backend.h"

namespace faultline::engine {
namespace {

using agent::testing::TempDir;

// The application under test: GET /orders answers 503 while its dependency is faulted, until it
// has failed `failover_after` requests (then it has "failed over" and answers 200). A negative
// value never fails over; 0 means the fault has no impact at all.
class App {
 public:
  App() {
    server_.Get("/orders", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu_);
      if (faulted_ && (failover_after_ < 0 || failures_ < failover_after_)) {
        ++failures_;
        res.status = 503;
        return;
      }
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The socket is already listening after bind_to_any_port: early requests wait in the backlog.
  }
  ~App() {
    server_.stop();
    thread_.join();
  }
  void SetFailoverAfter(int n) {
    std::lock_guard lock(mu_);
    failover_after_ = n;
  }
  void SetFaulted(bool f) {
    std::lock_guard lock(mu_);
    faulted_ = f;
    if (f) failures_ = 0;
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/orders"; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  bool faulted_ = false;
  int failover_after_ = 3;
  int failures_ = 0;
};

// A "dns" backend whose fault switches the App into failure mode; it also signals when applied.
class AppBackend final : public agent::FaultBackend {
 public:
  explicit AppBackend(App& app) : app_(app) {}
  std::string Kind() const override { return "dns"; }
  Status DetectCapability() override { return detect_; }
  Status Validate(const v1::FaultSpec&) const override { return Status::Ok(); }
  Result<std::unique_ptr<agent::FaultHandle>> Apply(const std::string&,
                                                    const v1::FaultSpec&) override {
    if (!apply_.ok()) return apply_;
    app_.SetFaulted(true);
    {
      std::lock_guard lock(mu_);
      ++applied_;
    }
    cv_.notify_all();
    return std::unique_ptr<agent::FaultHandle>(std::make_unique<Handle>(*this));
  }
  Status RevertOrphan(const std::string&, const v1::FaultSpec&) override { return Status::Ok(); }

  // True once applied; false if nothing was applied within the deadline.
  bool WaitApplied(std::chrono::seconds deadline = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return applied_ > 0; });
  }
  int reverted() const { return reverted_.load(); }
  int applied() {
    std::lock_guard lock(mu_);
    return applied_;
  }

  Status detect_;
  Status apply_;

 private:
  class Handle final : public agent::FaultHandle {
   public:
    explicit Handle(AppBackend& b) : b_(b) {}
    Status Revert() override {
      if (!done_.exchange(true)) {
        b_.app_.SetFaulted(false);
        ++b_.reverted_;
      }
      return Status::Ok();
    }
    agent::Evidence GetEvidence() const override { return {{"queries_faulted", 7}}; }

   private:
    AppBackend& b_;
    std::atomic<bool> done_{false};
  };

  App& app_;
  std::mutex mu_;
  std::condition_variable cv_;
  int applied_ = 0;
  std::atomic<int> reverted_{0};
};

constexpr char kExperiment[] = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: engine-test}
targets:
  app: {selector: {role: app}, mode: all}
faults:
  - name: dependency-dns
    target: app
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: 1500ms
probes:
  - name: api
    http: {url: "URL", expect_status: 200, timeout: 500ms}
    interval: 100ms
steady_state: {probes: [api], for: 100ms}
objectives:
  - {name: failover, probe: api, recover_within: 1m, stable_for: 200ms}
  - {name: after-revert, probe: api, after: revert, recover_within: 5s, stable_for: 100ms}
)";

class RunEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { probes::InitProbes(); }

  void SetUp() override {
    auto journal = agent::Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok());
    journal_ = std::move(journal).value();
    auto backend = std::make_unique<AppBackend>(app_);
    backend_ = backend.get();
    ASSERT_TRUE(registry_.Register(std::move(backend)).ok());
  }

  // Starts the agent; call after steering the backend's capability.
  void StartAgent() {
    registry_.DetectAll();
    manager_ = std::make_unique<agent::FaultManager>(registry_, *journal_, clock_,
                                                     agent::FaultManagerOptions{});
    // Plaintext on loopback: the engine under test, not the TLS layer (tested in tls_test).
    service_ = std::make_unique<agent::AgentService>(
        *manager_, registry_, agent::AgentIdentity{"app-1", {{"role", "app"}}},
        agent::AccessPolicy::kPlaintextAllowAll);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  experiment::Experiment Parse() {
    std::string text = kExperiment;
    text.replace(text.find("URL"), 3, app_.Url());
    auto outcome = experiment::ParseExperimentText(text, "engine-test.yaml");
    if (!outcome.ok()) {
      ADD_FAILURE() << outcome.errors.front().ToString();
      return experiment::Experiment{};
    }
    return *outcome.experiment;
  }

  static RunOptions Options() {
    RunOptions options;
    options.lease_ttl = std::chrono::seconds(5);
    options.agent_credentials = grpc::InsecureChannelCredentials();
    return options;
  }

  Inventory OneAgent(int port) {
    return Inventory{
        {AgentEndpoint{"app-1", "127.0.0.1:" + std::to_string(port), {{"role", "app"}}}}};
  }

  RunResult RunWith(const experiment::Experiment& exp) {
    RunEngine engine(exp, OneAgent(port_), Options());
    return engine.Run();
  }

  const ObjectiveResult& Objective(const RunResult& r, const std::string& name) {
    for (const auto& o : r.objectives) {
      if (o.name == name) return o;
    }
    ADD_FAILURE() << "no objective " << name;
    return r.objectives.front();
  }

  TempDir dir_;
  App app_;
  AppBackend* backend_ = nullptr;
  SystemClock& clock_ = SystemClock::Instance();
  agent::FaultRegistry registry_;
  std::unique_ptr<agent::Journal> journal_;
  std::unique_ptr<agent::FaultManager> manager_;
  std::unique_ptr<agent::AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(RunEngineTest, AutomatedFailoverPassesWithMeasuredTimes) {
  app_.SetFailoverAfter(3);
  StartAgent();
  auto exp = Parse();
  RunResult r = RunWith(exp);
  EXPECT_EQ(r.verdict, Verdict::kPass) << r.reason;
  EXPECT_EQ(ExitCodeFor(r.verdict), 0);
  const auto& o = Objective(r, "failover");
  ASSERT_TRUE(o.figures.time_to_detect.has_value());
  ASSERT_TRUE(o.figures.time_to_recover.has_value());
  EXPECT_FALSE(o.figures.no_impact);
  EXPECT_EQ(o.figures.failures, 3);  // the app failed exactly three requests, then failed over
  EXPECT_LT(*o.figures.time_to_detect, *o.figures.time_to_recover);
  // The recovery instant is the first success after the three failures; its bracket runs from
  // the last failure's send to that success's answer.
  const auto& samples = r.probes.at(0).samples;
  std::optional<MonoTime> first_ok_after_failure, first_ok_answered, last_failure_sent;
  bool failed = false;
  for (const auto& s : samples) {
    if (s.sample.at < *r.t_inject) continue;
    if (!s.sample.ok) {
      failed = true;
      last_failure_sent = s.sample.at;
    }
    if (failed && s.sample.ok) {
      first_ok_after_failure = s.sample.at;
      first_ok_answered = s.sample.AnsweredAt();
      break;
    }
  }
  ASSERT_TRUE(first_ok_after_failure.has_value());
  EXPECT_EQ(*o.figures.time_to_recover, *first_ok_after_failure - *r.t_inject);
  ASSERT_TRUE(o.figures.recover_bracket.has_value());
  EXPECT_EQ(o.figures.recover_bracket->lo, *last_failure_sent - *r.t_inject);
  EXPECT_LE(o.figures.recover_bracket->hi, *first_ok_answered - *r.t_inject);
  EXPECT_LE(o.figures.recover_bracket->lo, *o.figures.time_to_recover);
  EXPECT_GE(o.figures.recover_bracket->hi, *o.figures.time_to_recover);
  // The fault was applied once, reverted once, and its evidence reached the result.
  EXPECT_EQ(backend_->applied(), 1);
  EXPECT_EQ(backend_->reverted(), 1);
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_EQ(r.faults[0].evidence.at("queries_faulted"), 7u);
  EXPECT_EQ(r.faults[0].revert_reason, "request");
}

TEST_F(RunEngineTest, WithoutFailoverTheSameExperimentFails) {
  app_.SetFailoverAfter(-1);  // the negative control: never fails over
  StartAgent();
  auto exp = Parse();
  RunResult r = RunWith(exp);
  EXPECT_EQ(r.verdict, Verdict::kFail) << r.reason;
  EXPECT_EQ(ExitCodeFor(r.verdict), 1);
  const auto& o = Objective(r, "failover");
  EXPECT_EQ(o.verdict, ObjectiveVerdict::kFail);
  EXPECT_FALSE(o.figures.time_to_recover.has_value());
  EXPECT_TRUE(o.figures.time_to_detect.has_value());
  // Once the fault is reverted the app is healthy again.
  EXPECT_EQ(Objective(r, "after-revert").verdict, ObjectiveVerdict::kPass);
  EXPECT_EQ(backend_->reverted(), 1);
}

// The live terminal view is fed by RunOptions::on_sample: it must see every sample the report
// holds, and nothing else.
TEST_F(RunEngineTest, EverySampleIsStreamedToTheSampleObserver) {
  app_.SetFailoverAfter(3);
  StartAgent();
  auto exp = Parse();
  std::mutex mu;
  std::vector<std::pair<std::string, ProbeSample>> streamed;
  RunOptions options = Options();
  options.on_sample = [&](const std::string& probe, const ProbeSample& s) {
    std::lock_guard lock(mu);
    streamed.emplace_back(probe, s);
  };
  RunEngine engine(exp, OneAgent(port_), options);
  RunResult r = engine.Run();
  ASSERT_EQ(r.probes.size(), 1u);
  const auto& kept = r.probes[0].samples;
  std::lock_guard lock(mu);
  // Samples are streamed as they answer; the report keeps them in send order.
  std::stable_sort(streamed.begin(), streamed.end(), [](const auto& a, const auto& b) {
    return a.second.sample.at < b.second.sample.at;
  });
  ASSERT_EQ(streamed.size(), kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(streamed[i].first, r.probes[0].name);
    EXPECT_EQ(streamed[i].second.sample.at, kept[i].sample.at);
    EXPECT_EQ(streamed[i].second.sample.ok, kept[i].sample.ok);
  }
}

TEST_F(RunEngineTest, NoImpactIsFlagged) {
  app_.SetFailoverAfter(0);  // the fault does not bite
  StartAgent();
  auto exp = Parse();
  RunResult r = RunWith(exp);
  const auto& o = Objective(r, "failover");
  EXPECT_TRUE(o.figures.no_impact);
  EXPECT_FALSE(r.warnings.empty());
  // The kind's injected-evidence counter (common/faultspec's table) says whether the fault acted.
  bool explained = false;
  for (const auto& w : r.warnings) {
    explained |= w.find("queries_faulted is") != std::string::npos;
  }
  EXPECT_TRUE(explained) << "no warning names the dns kind's injected evidence";
}

// Direct gRPC to the agent, except that the first ApplyFault's answer is lost on the way back:
// the agent applied the fault, the engine sees DEADLINE_EXCEEDED.
class LosesFirstApplyAck final : public AgentConnection {
 public:
  explicit LosesFirstApplyAck(const AgentEndpoint& endpoint)
      : inner_(endpoint, grpc::InsecureChannelCredentials()) {}
  const AgentEndpoint& endpoint() const override { return inner_.endpoint(); }
  Result<v1::AgentInfo> GetInfo(Duration d) override { return inner_.GetInfo(d); }
  Result<v1::FaultStatus> ApplyFault(const v1::ApplyFaultRequest& req, Duration d) override {
    return inner_.ApplyFault(req, d);
  }
  Result<v1::FaultStatus> RenewLease(const std::string& id, Duration ttl, Duration d) override {
    return inner_.RenewLease(id, ttl, d);
  }
  Result<v1::FaultStatus> RevertFault(const std::string& id, Duration d) override {
    return inner_.RevertFault(id, d);
  }
  Result<std::vector<v1::FaultStatus>> ListFaults(bool all, Duration d) override {
    return inner_.ListFaults(all, d);
  }
  void ApplyFaultAsync(const v1::ApplyFaultRequest& req, Duration d,
                       Done<v1::FaultStatus> done) override {
    const int attempt = ++apply_attempts;
    inner_.ApplyFaultAsync(req, d, [attempt, done = std::move(done)](Result<v1::FaultStatus> r) {
      if (attempt == 1 && r.ok()) return done(DeadlineExceeded("ApplyFault: ack lost"));
      done(std::move(r));
    });
  }
  std::atomic<int> apply_attempts{0};

 private:
  AgentClient inner_;
};

TEST_F(RunEngineTest, ApplyRetriedAfterALostAckAppliesOnce) {
  app_.SetFailoverAfter(3);
  StartAgent();
  auto exp = Parse();
  std::shared_ptr<LosesFirstApplyAck> conn;
  RunOptions options = Options();
  options.connect = [&](const AgentEndpoint& e) {
    conn = std::make_shared<LosesFirstApplyAck>(e);
    return conn;
  };
  RunEngine engine(exp, OneAgent(port_), options);
  RunResult r = engine.Run();
  EXPECT_EQ(r.verdict, Verdict::kPass) << r.reason;
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->apply_attempts.load(), 2);  // the retry, with the same fault id
  EXPECT_EQ(backend_->applied(), 1);          // ...which the agent did not apply a second time
  EXPECT_EQ(backend_->reverted(), 1);
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_TRUE(r.faults[0].applied_at.has_value());
  EXPECT_TRUE(r.faults[0].error.empty()) << r.faults[0].error;
}

// The control: without retries the lost ack fails the run, and the fault the agent did apply
// is still reverted (the engine reverts faults whose apply failed, too).
TEST_F(RunEngineTest, WithoutRetriesALostAckIsAnErrorAndTheFaultIsStillReverted) {
  app_.SetFailoverAfter(3);
  StartAgent();
  auto exp = Parse();
  std::shared_ptr<LosesFirstApplyAck> conn;
  RunOptions options = Options();
  options.rpc_attempts = 1;
  options.connect = [&](const AgentEndpoint& e) {
    conn = std::make_shared<LosesFirstApplyAck>(e);
    return conn;
  };
  RunEngine engine(exp, OneAgent(port_), options);
  RunResult r = engine.Run();
  EXPECT_EQ(r.verdict, Verdict::kError);
  EXPECT_NE(r.reason.find("ack lost"), std::string::npos) << r.reason;
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->apply_attempts.load(), 1);
  EXPECT_EQ(backend_->applied(), 1);
  EXPECT_EQ(backend_->reverted(), 1);
}

TEST_F(RunEngineTest, MissingCapabilityIsAnInfrastructureErrorAndAppliesNothing) {
  backend_->detect_ = FailedPrecondition("nftables nat is not available");
  StartAgent();
  auto exp = Parse();
  RunResult r = RunWith(exp);
  EXPECT_EQ(r.verdict, Verdict::kError);
  EXPECT_EQ(ExitCodeFor(r.verdict), 4);
  EXPECT_NE(r.reason.find("nftables nat is not available"), std::string::npos) << r.reason;
  EXPECT_EQ(backend_->applied(), 0);
}

TEST_F(RunEngineTest, UnreachableAgentIsAnInfrastructureError) {
  StartAgent();
  int live_port = port_;
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  port_ = live_port;  // nothing listens there any more
  auto exp = Parse();
  RunResult r = RunWith(exp);
  EXPECT_EQ(r.verdict, Verdict::kError);
  EXPECT_NE(r.reason.find("unreachable"), std::string::npos) << r.reason;
  EXPECT_EQ(backend_->applied(), 0);
}

TEST_F(RunEngineTest, ApplyFailureRevertsAndErrors) {
  backend_->apply_ = Internal("kernel said no");
  StartAgent();
  auto exp = Parse();
  RunResult r = RunWith(exp);
  EXPECT_EQ(r.verdict, Verdict::kError);
  EXPECT_NE(r.reason.find("kernel said no"), std::string::npos) << r.reason;
}

TEST_F(RunEngineTest, CancelMidFaultRevertsAndAborts) {
  app_.SetFailoverAfter(-1);
  StartAgent();
  auto exp = Parse();
  exp.faults[0].duration = std::chrono::minutes(10);  // only the cancel can end this run
  RunEngine engine(exp, OneAgent(port_), Options());
  std::thread canceller([&] {
    EXPECT_TRUE(backend_->WaitApplied()) << "the fault was never applied";
    engine.Cancel("operator pressed Ctrl-C");
  });
  RunResult r = engine.Run();
  canceller.join();
  EXPECT_EQ(r.verdict, Verdict::kAborted) << r.reason;
  EXPECT_EQ(ExitCodeFor(r.verdict), 3);
  EXPECT_NE(r.reason.find("Ctrl-C"), std::string::npos) << r.reason;
  EXPECT_EQ(backend_->reverted(), 1);
}

TEST_F(RunEngineTest, LeaseRenewalsRacingTheRevertAreNoError) {
  // A renewal period that divides the fault duration makes a renewal coincide with the revert;
  // the agent then refuses the renewal (the fault is being reverted) and that must not be read as
  // "fault state unknown".
  app_.SetFailoverAfter(3);
  StartAgent();
  auto exp = Parse();
  exp.faults[0].duration = std::chrono::milliseconds(1200);
  for (int i = 0; i < 3; ++i) {
    RunOptions options = Options();
    options.lease_ttl = std::chrono::milliseconds(300);  // renewed every 100ms
    RunEngine engine(exp, OneAgent(port_), options);
    RunResult r = engine.Run();
    EXPECT_EQ(r.verdict, Verdict::kPass) << r.reason;
    for (const auto& f : r.faults) EXPECT_FALSE(f.state_unknown) << f.error;
  }
}

TEST_F(RunEngineTest, UnmatchedSelectorIsAnErrorBeforeAnythingHappens) {
  StartAgent();
  auto exp = Parse();
  RunEngine engine(exp, Inventory{{AgentEndpoint{"db-1", "127.0.0.1:1", {{"role", "db"}}}}},
                   Options());
  RunResult r = engine.Run();
  EXPECT_EQ(r.verdict, Verdict::kError);
  EXPECT_NE(r.reason.find("no agent in the inventory matches"), std::string::npos) << r.reason;
  EXPECT_EQ(backend_->applied(), 0);
}

TEST(PartitionPeersTest, ChosenAgentsOfTheOtherGroupBecomePeers) {
  Inventory inv;
  inv.agents = {{"fl-app", "10.77.0.10:7070", {}},
                {"fl-db-east", "10.77.0.20:7070", {}},
                {"db-v6", "[fd00::20]:7070", {}},
                {"db-named", "db.internal:7070", {}},
                {"fl-db-west", "10.77.0.30:7070", {}}};
  std::map<std::string, std::vector<std::string>> targets = {
      {"app", {"fl-app"}}, {"east", {"fl-db-east", "db-v6", "db-named"}}, {"west", {}}};
  v1::NetworkSelector m;
  m.add_cidrs("10.77.0.20");  // already named: not added twice
  AddPartitionPeers({"east", "west"}, targets, inv, &m);
  EXPECT_EQ(std::vector<std::string>(m.cidrs().begin(), m.cidrs().end()),
            (std::vector<std::string>{"10.77.0.20", "fd00::20"}));
  EXPECT_EQ(std::vector<std::string>(m.hosts().begin(), m.hosts().end()),
            std::vector<std::string>{"db.internal"});
  // Negative control: agents not chosen for the group (fl-db-west, fl-app) never appear.
  for (const auto& c : m.cidrs()) {
    EXPECT_NE(c, "10.77.0.30");
    EXPECT_NE(c, "10.77.0.10");
  }
}

}  // namespace
}  // namespace faultline::engine
