#pragma once
// AgentProbes: the run's agent-side probes (`from: <target>`). For every such probe and every
// agent its target picked: maps that agent's clock to the controller's (ClockMapping, from
// several GetInfo round trips, the shortest kept), opens a Probe stream, and adds each sample,
// mapped and carrying the mapping's error bound, to the run's ProbeSet (which orders them with
// the controller's own samples by send instant). The report names the agents each probe ran on
// and their clock error bounds (ProbeRecord::sites).
//
// A probe `from:` a target with `workloads:` runs in each workload the run picked for that target
// (RunResult::workload_targets): its request carries the selector naming exactly that workload
// (SelectorFor), the agent resolves it and runs the probe in the workload's network namespace;
// the site and every sample name the workload. One clock mapping per agent serves all its streams.
//
// Threading: Start and Stop from the engine's thread; samples arrive on gRPC threads.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/status.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/clock_mapping.h"
#include "controller/engine/workload_selection.h"
#include "controller/experiment/experiment.h"
#include "controller/probes/probe_set.h"

namespace faultline::engine {

// Exchanges per agent for its clock mapping.
inline constexpr int kClockExchanges = 5;

// Maps an agent's clock with `exchanges` GetInfo calls on `client` (each bounded by `deadline`),
// reading `clock` around each. The agent's error when every call fails or none carries a clock.
Result<ClockMapping> MapAgentClock(AgentConnection& client, Clock& clock, Duration deadline,
                                   int exchanges = kClockExchanges);

class AgentProbes {
 public:
  // `experiment`, `probes` and `clock` must outlive this object. `clients` holds a connection
  // for every agent of `targets` (target → agent names) and of `workloads` (target → the
  // workloads picked for a target with `workloads:`).
  AgentProbes(const experiment::Experiment& experiment,
              std::map<std::string, std::vector<std::string>> targets,
              std::map<std::string, std::shared_ptr<AgentConnection>> clients,
              probes::ProbeSet& probes, Clock& clock,
              std::map<std::string, std::vector<WorkloadTarget>> workloads = {});
  ~AgentProbes();  // Stop()

  // Maps the clocks, starts every stream for run `run_id` (each lasting at most `duration`, so a
  // stream the controller forgot ends on its own) and waits up to `deadline` until every agent
  // has accepted its probe. The first refusal or failure (named: probe, agent, why) stops what
  // was started. Call once; nothing to do (OK) when the experiment has no agent-side probe.
  Status Start(const std::string& run_id, Duration duration, Duration deadline);
  // Cancels every stream (the agents stop at once) and waits for them to end. Idempotent.
  void Stop();
  // Streams that ended with an error while the run went on, one line each.
  std::vector<std::string> Warnings() const;

 private:
  struct Stream;

  const experiment::Experiment& exp_;
  std::map<std::string, std::vector<std::string>> targets_;
  std::map<std::string, std::shared_ptr<AgentConnection>> clients_;
  std::map<std::string, std::vector<WorkloadTarget>> workloads_;
  probes::ProbeSet& probes_;
  Clock& clock_;
  std::vector<std::unique_ptr<Stream>> streams_;
  mutable std::mutex mu_;
  std::vector<std::string> warnings_;  // guarded by mu_
};

}  // namespace faultline::engine
