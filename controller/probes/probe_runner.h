#pragma once
// One attempt of a probe, run from the controller's host. Blocking, bounded by the probe's
// timeout. Thread-safe: probes run concurrently, each on its own thread.

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/status.h"
#include "controller/experiment/experiment.h"

namespace faultline::probes {

struct ProbeOutcome {
  bool ok = false;
  Duration latency{};
  std::string detail;  // "200", "connect: connection refused", "NXDOMAIN", "exit 1", ...
  // Set by a probe whose answer describes an instant other than the attempt's start: a PromQL
  // query's evaluation time (PromQlProbe), on SystemClock's monotonic clock. It always lies
  // between the attempt's send and answer instants.
  std::optional<MonoTime> observed_at;
};

// Call once per process before probes run (libcurl's global init is not thread-safe).
void InitProbes();

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
