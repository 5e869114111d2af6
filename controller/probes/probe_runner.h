#pragma once
// One attempt of an experiment's probe, run from the controller's host: the host kinds through
// common/probes (RunHostProbeOnce), prometheus through PromQlProbe. Blocking, bounded by the
// probe's timeout. Thread-safe.

#include <string>
#include <vector>

#include "common/probes/probe_runner.h"
#include "common/status.h"
#include "controller/experiment/experiment.h"

namespace faultline::probes {

// Runs `probe` once. Never throws; every failure is an outcome with ok=false and a detail.
// Precondition: the probe passed the experiment validator.
ProbeOutcome RunProbeOnce(const experiment::Probe& probe);

// For a long-running service (faultline-controller) that runs other people's experiments: every
// command probe that would run on this host (`from: controller`) must name, as argv[0], exactly
// one of `allowed` (list absolute paths to pin the program; a bare name is looked up in PATH).
// An empty list refuses every such probe. Probes run from agents are the agents' business.
// PERMISSION_DENIED naming the probe, its program and `flag` (the option that sets the list).
// Pure.
Status CheckCommandProbesAllowed(const experiment::Experiment& experiment,
                                 const std::vector<std::string>& allowed, const std::string& flag);

}  // namespace faultline::probes
