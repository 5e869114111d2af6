#pragma once
// One attempt of a probe, run from the controller's host. Blocking, bounded by the probe's
// timeout. Thread-safe: probes run concurrently, each on its own thread.

#include <string>

#include "common/duration.h"
#include "controller/experiment/experiment.h"

namespace faultline::probes {

struct ProbeOutcome {
  bool ok = false;
  Duration latency{};
  std::string detail;  // "200", "connect: connection refused", "NXDOMAIN", "exit 1", ...
};

// Call once per process before probes run (libcurl's global init is not thread-safe).
void InitProbes();

// Runs `probe` once. Never throws; every failure is an outcome with ok=false and a detail.
// Precondition: the probe passed the experiment validator.
ProbeOutcome RunProbeOnce(const experiment::Probe& probe);

}  // namespace faultline::probes
