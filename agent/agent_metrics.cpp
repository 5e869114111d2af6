#include "agent/agent_metrics.h"

#include <spdlog/spdlog.h>

namespace faultline::agent {
namespace {

constexpr char kBuildInfo[] = "faultline_agent_build_info";
constexpr char kActive[] = "faultline_agent_active_faults";
constexpr char kApplied[] = "faultline_agent_faults_applied_total";
constexpr char kReverted[] = "faultline_agent_faults_reverted_total";
constexpr char kLeaseExpiries[] = "faultline_agent_lease_expiries_total";
constexpr char kEvidence[] = "faultline_agent_fault_evidence_total";
constexpr char kConnectionsOpen[] = "faultline_agent_connections_open";
constexpr char kConnectionsRefused[] = "faultline_agent_connections_refused_total";

// Metric updates only fail on a programming error (undeclared family, bad label name); log it
// rather than disturb fault handling.
void Check(const Status& s) {
  if (!s.ok()) spdlog::error("metrics: {}", s.ToString());
}

}  // namespace

AgentMetrics::AgentMetrics(metrics::Registry& registry, const std::string& agent_name,
                           const std::string& version, const std::vector<std::string>& kinds)
    : registry_(registry) {
  using metrics::MetricType;
  Check(registry_.Declare(kBuildInfo, MetricType::kGauge,
                          "Always 1; labels name this agent and its version."));
  Check(registry_.Declare(kActive, MetricType::kGauge, "Faults active on this agent now."));
  Check(registry_.Declare(kApplied, MetricType::kCounter, "Faults applied, by kind."));
  Check(registry_.Declare(
      kReverted, MetricType::kCounter,
      "Faults reverted, by kind and reason (request, revert-all, lease-expired, max-duration, "
      "shutdown, journal)."));
  Check(registry_.Declare(kLeaseExpiries, MetricType::kCounter,
                          "Faults reverted because their lease was not renewed in time."));
  Check(registry_.Declare(kEvidence, MetricType::kCounter,
                          "Evidence counters of each active fault (e.g. queries_faulted)."));
  Check(registry_.Set(kBuildInfo, {{"agent", agent_name}, {"version", version}}, 1));
  Check(registry_.Set(kActive, {}, 0));
  Check(registry_.Increment(kLeaseExpiries, {}, 0));
  for (const std::string& kind : kinds) Check(registry_.Increment(kApplied, {{"kind", kind}}, 0));
}

void AgentMetrics::InstallObservers(FaultManagerOptions* options) {
  options->on_applied = [this](const std::string& kind) {
    Check(registry_.Increment(kApplied, {{"kind", kind}}));
  };
  options->on_reverted = [this](const std::string& kind, const std::string& reason) {
    Check(registry_.Increment(kReverted, {{"kind", kind}, {"reason", reason}}));
    if (reason == "lease-expired") Check(registry_.Increment(kLeaseExpiries, {}));
  };
}

void AgentMetrics::CollectFrom(const FaultManager& manager) {
  registry_.AddCollector([&manager](metrics::Registry& registry) {
    std::vector<v1::FaultStatus> active = manager.List(/*include_reverted=*/false);
    std::vector<metrics::Sample> evidence;
    for (const v1::FaultStatus& fault : active) {
      const std::string kind = FaultKindOf(fault.spec());
      for (const auto& [counter, value] : fault.evidence()) {
        evidence.push_back({{{"fault_id", fault.fault_id()},
                             {"run_id", fault.run_id()},
                             {"kind", kind},
                             {"counter", counter}},
                            static_cast<double>(value)});
      }
    }
    Check(registry.Set(kActive, {}, static_cast<double>(active.size())));
    Check(registry.Replace(kEvidence, std::move(evidence)));
  });
}

void AgentMetrics::CollectConnections(std::function<ConnectionCounts()> read) {
  using metrics::MetricType;
  Check(registry_.Declare(kConnectionsOpen, MetricType::kGauge,
                          "Connections to the agent's gRPC port open now (--max-connections "
                          "caps them)."));
  Check(registry_.Declare(kConnectionsRefused, MetricType::kCounter,
                          "Connections to the agent's gRPC port closed at once because "
                          "--max-connections were open."));
  registry_.AddCollector([read = std::move(read)](metrics::Registry& registry) {
    const ConnectionCounts counts = read();
    Check(registry.Set(kConnectionsOpen, {}, static_cast<double>(counts.open)));
    Check(registry.Replace(kConnectionsRefused, {{{}, static_cast<double>(counts.refused)}}));
  });
}

}  // namespace faultline::agent
