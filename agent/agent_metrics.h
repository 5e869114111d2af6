#pragma once
// AgentMetrics: the agent's Prometheus metrics, kept in a metrics::Registry (common/metrics.h)
// that `--metrics-listen` serves. Counters come from FaultManager's observers; the active-fault
// gauge and per-fault evidence are read from the manager on every scrape.
//
//   faultline_agent_build_info{agent,version}                       gauge, always 1
//   faultline_agent_active_faults                                    gauge
//   faultline_agent_faults_applied_total{kind}                       counter
//   faultline_agent_faults_reverted_total{kind,reason}               counter
//   faultline_agent_lease_expiries_total                             counter
//   faultline_agent_fault_evidence_total{fault_id,run_id,kind,counter}  counter, per active fault
//   faultline_agent_connections_open                                 gauge    (with --listen)
//   faultline_agent_connections_refused_total                        counter  (with --listen)

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/fault_manager.h"
#include "common/metrics.h"

namespace faultline::agent {

// Connections to the agent's gRPC port (agent/net/accept_gate.h).
struct ConnectionCounts {
  uint64_t open = 0;     // relayed now
  uint64_t refused = 0;  // closed at once since start: the cap was reached
};

class AgentMetrics {
 public:
  // Declares the families in `registry` (which must outlive this object) and sets build info.
  // `kinds` are the fault kinds this agent serves: their applied counters start at 0.
  AgentMetrics(metrics::Registry& registry, const std::string& agent_name,
               const std::string& version, const std::vector<std::string>& kinds);

  // Sets options->on_applied/on_reverted to count applies, reverts and lease expiries. Call
  // before the FaultManager is constructed with `options`; this object must outlive the manager.
  void InstallObservers(FaultManagerOptions* options);

  // Registers the scrape-time collector of active faults and their evidence. `manager` must
  // outlive every later Render of the registry.
  void CollectFrom(const FaultManager& manager);

  // Declares the connection gauge and refusal counter and registers a scrape-time collector
  // that reads them from `read` (called on the scraping thread; whatever it reads must outlive
  // every later Render). Call at most once.
  void CollectConnections(std::function<ConnectionCounts()> read);

 private:
  metrics::Registry& registry_;
};

}  // namespace faultline::agent
