// Picking workloads across agents: `mode` applied to every workload the target's agents found,
// first as the pure PickWorkloads, then through the RunEngine with fake agent connections that
// record what each ApplyFault carried.
#include "controller/engine/workload_selection.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "controller/engine/run_engine.h"
#include "controller/experiment/parser.h"
#include "controller/probes/probe_runner.h"

namespace faultline::engine {
namespace {

v1::Workload Container(const std::string& host, const std::string& name) {
  v1::Workload w;
  w.set_kind("container");
  w.set_runtime("docker");
  w.set_id("id-" + name);
  w.set_name(name);
  w.set_host(host);
  w.add_pids(100);
  return w;
}

// 4 containers on 2 agents: a1 has c1, c2; a2 has c3, c4.
std::vector<WorkloadTarget> FourOnTwo() {
  return {{"a1", Container("a1", "c1")},
          {"a1", Container("a1", "c2")},
          {"a2", Container("a2", "c3")},
          {"a2", Container("a2", "c4")}};
}

experiment::TargetMode Mode(experiment::TargetMode::Kind k, int v = 0) { return {k, v}; }

TEST(PickWorkloadsTest, PercentFiftyOfFourContainersOnTwoAgentsPicksTwo) {
  using K = experiment::TargetMode::Kind;
  std::set<std::string> seen;
  for (unsigned seed = 0; seed < 64; ++seed) {
    std::mt19937 rng(seed);
    auto picked = PickWorkloads(FourOnTwo(), Mode(K::kPercent, 50), rng);
    ASSERT_TRUE(picked.ok()) << picked.status().message();
    ASSERT_EQ(picked->size(), 2u);
    EXPECT_NE((*picked)[0].workload.id(), (*picked)[1].workload.id());
    for (const auto& w : *picked) seen.insert(w.workload.name());
  }
  // Across agents, not per agent: over many runs every container gets picked (a per-agent pick
  // of 50% would also give 2, so also check a pair from one agent happens).
  EXPECT_EQ(seen, (std::set<std::string>{"c1", "c2", "c3", "c4"}));
  bool same_agent_pair = false;
  for (unsigned seed = 0; seed < 64 && !same_agent_pair; ++seed) {
    std::mt19937 rng(seed);
    auto picked = PickWorkloads(FourOnTwo(), Mode(K::kPercent, 50), rng);
    same_agent_pair = (*picked)[0].agent == (*picked)[1].agent;
  }
  EXPECT_TRUE(same_agent_pair);
}

TEST(PickWorkloadsTest, SameSeedSamePickWhateverTheAnswerOrder) {
  using K = experiment::TargetMode::Kind;
  auto reversed = FourOnTwo();
  std::reverse(reversed.begin(), reversed.end());
  std::mt19937 a(7), b(7);
  auto p1 = PickWorkloads(FourOnTwo(), Mode(K::kOne), a);
  auto p2 = PickWorkloads(reversed, Mode(K::kOne), b);
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ((*p1)[0].workload.id(), (*p2)[0].workload.id());
}

TEST(PickWorkloadsTest, ModesCountAcrossAgents) {
  using K = experiment::TargetMode::Kind;
  std::mt19937 rng(1);
  EXPECT_EQ(PickWorkloads(FourOnTwo(), Mode(K::kAll), rng)->size(), 4u);
  EXPECT_EQ(PickWorkloads(FourOnTwo(), Mode(K::kOne), rng)->size(), 1u);
  EXPECT_EQ(PickWorkloads(FourOnTwo(), Mode(K::kFixed, 3), rng)->size(), 3u);
  EXPECT_EQ(PickWorkloads(FourOnTwo(), Mode(K::kPercent, 1), rng)->size(), 1u);  // at least one
  EXPECT_EQ(PickWorkloads(FourOnTwo(), Mode(K::kPercent, 100), rng)->size(), 4u);
}

// Negative controls: nothing matched, or more asked for than matched, is an error, never a
// smaller blast radius than asked or an empty run.
TEST(PickWorkloadsTest, NothingMatchedOrTooFewIsAnError) {
  using K = experiment::TargetMode::Kind;
  std::mt19937 rng(1);
  auto none = PickWorkloads({}, Mode(K::kAll), rng);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no workload matches"), std::string::npos);
  auto five = PickWorkloads(FourOnTwo(), Mode(K::kFixed, 5), rng);
  ASSERT_FALSE(five.ok());
  EXPECT_NE(five.status().message().find("fixed:5"), std::string::npos);
}

TEST(PickWorkloadsTest, SelectorForNamesExactlyThatWorkload) {
  v1::WorkloadSelector s = SelectorFor(Container("a1", "c1"));
  EXPECT_EQ(s.runtime(), v1::WorkloadSelector::DOCKER);
  ASSERT_EQ(s.ids_size(), 1);
  EXPECT_EQ(s.ids(0), "id-c1");
  EXPECT_TRUE(s.labels().empty());
  v1::Workload ns;
  ns.set_kind("netns");
  ns.set_netns_path("/run/netns/x");
  EXPECT_EQ(SelectorFor(ns).netns_path(), "/run/netns/x");
  EXPECT_EQ(SelectorFor(ns).runtime(), v1::WorkloadSelector::RUNTIME_UNSPECIFIED);
}

// ---- through the engine ----

// An agent that owns some containers and records every ApplyFault it gets.
class FakeAgent final : public AgentConnection {
 public:
  FakeAgent(AgentEndpoint e, std::vector<v1::Workload> workloads)
      : endpoint_(std::move(e)), workloads_(std::move(workloads)) {}
  const AgentEndpoint& endpoint() const override { return endpoint_; }
  Result<v1::AgentInfo> GetInfo(Duration) override {
    v1::AgentInfo info;
    info.set_agent_id(endpoint_.name);
    info.add_capabilities("dns");
    return info;
  }
  Result<v1::ListWorkloadsResponse> ListWorkloads(const v1::WorkloadSelector& s,
                                                  Duration) override {
    v1::ListWorkloadsResponse r;
    for (const auto& w : workloads_) {
      bool match = true;
      for (const auto& [k, v] : s.labels()) {
        auto it = w.labels().find(k);
        match = match && it != w.labels().end() && it->second == v;
      }
      if (match) *r.add_workloads() = w;
    }
    return r;
  }
  Result<v1::FaultStatus> ApplyFault(const v1::ApplyFaultRequest& req, Duration) override {
    std::lock_guard lock(mu_);
    applied_.push_back(req);
    v1::FaultStatus st;
    st.set_fault_id(req.fault_id());
    st.set_state(v1::ACTIVE);
    return st;
  }
  Result<v1::FaultStatus> RenewLease(const std::string& id, Duration, Duration) override {
    v1::FaultStatus st;
    st.set_fault_id(id);
    st.set_state(v1::ACTIVE);
    return st;
  }
  Result<v1::FaultStatus> RevertFault(const std::string& id, Duration) override {
    v1::FaultStatus st;
    st.set_fault_id(id);
    st.set_state(v1::REVERTED);
    return st;
  }
  Result<std::vector<v1::FaultStatus>> ListFaults(bool, Duration) override {
    return std::vector<v1::FaultStatus>{};
  }

  std::vector<v1::ApplyFaultRequest> applied() {
    std::lock_guard lock(mu_);
    return applied_;
  }

 private:
  AgentEndpoint endpoint_;
  std::vector<v1::Workload> workloads_;
  std::mutex mu_;
  std::vector<v1::ApplyFaultRequest> applied_;
};

constexpr char kExperiment[] = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: workload-test}
targets:
  orders: {selector: {role: app}, workloads: {runtime: docker, labels: {app: LABEL}}, mode: MODE}
faults:
  - name: dns
    target: orders
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: 200ms
probes:
  - name: api
    http: {url: "URL", expect_status: 200, timeout: 500ms}
    interval: 100ms
objectives:
  - {name: up, probe: api, recover_within: 1m, stable_for: 100ms}
)";

class WorkloadRunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { probes::InitProbes(); }
  void SetUp() override {
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before listen_after_bind has started would leave it listening forever (and the
    // join in TearDown hanging): wait until the server runs.
    while (!server_.is_running()) std::this_thread::yield();
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }

  RunResult Run(const std::string& label, const std::string& mode) {
    std::string text = kExperiment;
    text.replace(text.find("LABEL"), 5, label);
    text.replace(text.find("MODE"), 4, mode);
    text.replace(text.find("URL"), 3, "http://127.0.0.1:" + std::to_string(port_) + "/");
    auto parsed = experiment::ParseExperimentText(text, "w.yaml");
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.errors.front().ToString());
    Inventory inv{{AgentEndpoint{"a1", "127.0.0.1:1", {{"role", "app"}}},
                   AgentEndpoint{"a2", "127.0.0.1:2", {{"role", "app"}}},
                   AgentEndpoint{"db", "127.0.0.1:3", {{"role", "db"}}}}};
    RunOptions options;
    options.run_id = "wtest";
    options.lease_ttl = std::chrono::seconds(5);
    options.connect = [&](const AgentEndpoint& e) -> std::shared_ptr<AgentConnection> {
      std::vector<v1::Workload> ws;
      for (const std::string& n : {std::string("c1"), std::string("c2")}) {
        v1::Workload w = Container(e.name, e.name + "-" + n);
        (*w.mutable_labels())["app"] = "orders";
        ws.push_back(w);
      }
      auto fake = std::make_shared<FakeAgent>(e, ws);
      agents_[e.name] = fake;
      return fake;
    };
    RunEngine engine(*parsed.experiment, inv, options);
    return engine.Run();
  }

  std::vector<v1::ApplyFaultRequest> AllApplies() {
    std::vector<v1::ApplyFaultRequest> out;
    for (auto& [name, a] : agents_) {
      for (auto& r : a->applied()) out.push_back(r);
    }
    return out;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::map<std::string, std::shared_ptr<FakeAgent>> agents_;
};

TEST_F(WorkloadRunTest, PercentFiftyAppliesToTwoOfFourContainersEachNamedInTheRequest) {
  RunResult r = Run("orders", "percent:50");
  auto applies = AllApplies();
  ASSERT_EQ(applies.size(), 2u) << r.reason;
  std::set<std::string> ids;
  for (const auto& a : applies) {
    ASSERT_TRUE(a.has_workload());
    ASSERT_EQ(a.workload().ids_size(), 1);
    EXPECT_EQ(a.workload().runtime(), v1::WorkloadSelector::DOCKER);
    ids.insert(a.workload().ids(0));
    ids.insert("fault:" + a.fault_id());
  }
  EXPECT_EQ(ids.size(), 4u);  // two distinct containers, two distinct fault ids
  ASSERT_EQ(r.faults.size(), 2u);
  for (const auto& f : r.faults) {
    ASSERT_TRUE(f.workload.has_value());
    EXPECT_EQ(f.workload->host(), f.agent);
  }
  ASSERT_EQ(r.workload_targets["orders"].size(), 2u);
  // The db agent (selector role: db) was never asked.
  EXPECT_TRUE(agents_.count("db") == 0 || agents_["db"]->applied().empty());
}

TEST_F(WorkloadRunTest, AllAppliesToEveryContainerOnEveryAgent) {
  RunResult r = Run("orders", "all");
  EXPECT_EQ(AllApplies().size(), 4u) << r.reason;
}

// Negative control: a label that matches nothing never starts the run (exit 4, nothing applied).
TEST_F(WorkloadRunTest, NoMatchingWorkloadIsAnInfrastructureErrorAndAppliesNothing) {
  RunResult r = Run("nothing-has-this", "all");
  EXPECT_EQ(r.verdict, Verdict::kError);
  EXPECT_EQ(ExitCodeFor(r.verdict), 4);
  EXPECT_NE(r.reason.find("no workload matches"), std::string::npos) << r.reason;
  EXPECT_TRUE(AllApplies().empty());
}

}  // namespace
}  // namespace faultline::engine
