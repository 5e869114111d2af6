#include "agent/agent_metrics.h"

#include <gtest/gtest.h>

#include "fake_backend.h"

namespace faultline::agent {
namespace {

using testing::FakeBackend;
using testing::FakeBackendState;
using testing::MakeRequest;
using testing::TempDir;

class AgentMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto journal = Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
    ASSERT_TRUE(registry_.Register(std::make_unique<FakeBackend>(state_)).ok());
    registry_.DetectAll();
    options_.max_lease_ttl = std::chrono::seconds(60);
    metrics_.InstallObservers(&options_);
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, options_);
    metrics_.CollectFrom(*manager_);
  }
  bool Has(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
  }

  TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<FakeBackendState> state_ = std::make_shared<FakeBackendState>();
  FaultRegistry registry_;
  std::unique_ptr<Journal> journal_;
  metrics::Registry metrics_registry_;
  AgentMetrics metrics_{metrics_registry_, "web-1", "0.1.0", {"dns"}};
  FaultManagerOptions options_;
  std::unique_ptr<FaultManager> manager_;
};

TEST_F(AgentMetricsTest, StartsAtZeroWithBuildInfo) {
  std::string text = metrics_registry_.Render();
  EXPECT_TRUE(Has(text, "faultline_agent_build_info{agent=\"web-1\",version=\"0.1.0\"} 1"));
  EXPECT_TRUE(Has(text, "faultline_agent_active_faults 0"));
  EXPECT_TRUE(Has(text, "faultline_agent_faults_applied_total{kind=\"dns\"} 0"));
  EXPECT_TRUE(Has(text, "faultline_agent_lease_expiries_total 0"));
  EXPECT_EQ(text.find("faultline_agent_fault_evidence_total{"), std::string::npos);
}

TEST_F(AgentMetricsTest, ActiveFaultEvidenceThenRevertCounts) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->evidence = 4;
  }
  std::string text = metrics_registry_.Render();
  EXPECT_TRUE(Has(text, "faultline_agent_active_faults 1"));
  EXPECT_TRUE(Has(text, "faultline_agent_faults_applied_total{kind=\"dns\"} 1"));
  EXPECT_TRUE(Has(text,
                  "faultline_agent_fault_evidence_total{fault_id=\"run1_0\",run_id=\"run1\","
                  "kind=\"dns\",counter=\"queries_faulted\"} 4"));
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->evidence = 9;
  }
  EXPECT_TRUE(Has(metrics_registry_.Render(),
                  "faultline_agent_fault_evidence_total{fault_id=\"run1_0\",run_id=\"run1\","
                  "kind=\"dns\",counter=\"queries_faulted\"} 9"));

  ASSERT_TRUE(manager_->Revert("run1_0", "request").ok());
  text = metrics_registry_.Render();
  EXPECT_TRUE(Has(text, "faultline_agent_active_faults 0"));
  EXPECT_TRUE(
      Has(text, "faultline_agent_faults_reverted_total{kind=\"dns\",reason=\"request\"} 1"));
  EXPECT_EQ(text.find("faultline_agent_fault_evidence_total{"), std::string::npos);
  EXPECT_TRUE(Has(text, "faultline_agent_lease_expiries_total 0"));
}

TEST_F(AgentMetricsTest, LeaseExpiryIsCounted) {
  ASSERT_TRUE(manager_->Apply(MakeRequest("run1", "run1_0")).ok());
  clock_.Advance(std::chrono::minutes(2));
  ASSERT_EQ(manager_->CheckLeases().size(), 1u);
  std::string text = metrics_registry_.Render();
  EXPECT_TRUE(Has(text, "faultline_agent_lease_expiries_total 1"));
  EXPECT_TRUE(
      Has(text, "faultline_agent_faults_reverted_total{kind=\"dns\",reason=\"lease-expired\"} 1"));
}

TEST_F(AgentMetricsTest, ConnectionGaugeAndRefusalsAreReadAtScrapeTime) {
  ConnectionCounts counts{3, 0};
  metrics_.CollectConnections([&counts] { return counts; });
  std::string text = metrics_registry_.Render();
  EXPECT_TRUE(Has(text, "faultline_agent_connections_open 3")) << text;
  EXPECT_TRUE(Has(text, "faultline_agent_connections_refused_total 0")) << text;
  counts = {256, 17};
  text = metrics_registry_.Render();
  EXPECT_TRUE(Has(text, "faultline_agent_connections_open 256")) << text;
  EXPECT_TRUE(Has(text, "faultline_agent_connections_refused_total 17")) << text;
}

}  // namespace
}  // namespace faultline::agent
