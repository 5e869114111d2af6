#pragma once
// Which workloads a target group acts on: `mode` (all, one, fixed:N, percent:P) applied to the
// workloads its `workloads:` selector matched on every agent its `selector` picked, across agents
// (not per agent). Pure; the engine does the agent calls.

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "controller/experiment/experiment.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::engine {

// One matched workload and the agent that found it.
struct WorkloadTarget {
  std::string agent;
  v1::Workload workload;
};

// How many of `matched` things `mode` picks: all; one; N (FAILED_PRECONDITION when N > matched);
// percent: floor(matched * P / 100), at least 1. FAILED_PRECONDITION when matched is 0.
Result<size_t> ModeCount(const experiment::TargetMode& mode, size_t matched);

// The workloads `mode` picks from `matched`: a random subset (reproducible from `rng`'s state),
// returned sorted by (agent, runtime, id). FAILED_PRECONDITION (ModeCount's) when nothing matched
// or fixed:N asks for more than matched; the message says "no workload matches" for the first.
Result<std::vector<WorkloadTarget>> PickWorkloads(std::vector<WorkloadTarget> matched,
                                                  const experiment::TargetMode& mode,
                                                  std::mt19937& rng);

// "container orders-1 (docker 3f2a…) on fl-app", "pod default/orders-0 on node-1": how reports
// and progress lines name a workload.
std::string DescribeWorkload(const WorkloadTarget& t);

// The selector an ApplyFault carries to name exactly `w` on its agent: runtime + ids: [id] for a
// container or pod, the handle itself for the runtime-free kinds.
v1::WorkloadSelector SelectorFor(const v1::Workload& w);

}  // namespace faultline::engine
