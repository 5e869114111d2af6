#pragma once
// One attempt of a probe on this host: http (libcurl), tcp, dns (ldns), command (argv) and
// grpc_health (grpc.health.v1). Shared by the controller (from: controller) and the agent
// (from: <target>). Blocking, bounded by the probe's timeout. Thread-safe: probes run
// concurrently, each on its own thread.

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/duration.h"
#include "common/probes/probe_spec.h"

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

// Runs `probe` once on this host. Never throws; every failure is an outcome with ok=false and a
// detail. A kPrometheus probe is a failing outcome ("prometheus probes run on the controller"):
// the controller's RunProbeOnce (controller/probes/probe_runner.h) runs those.
// Precondition: the probe was validated (experiment parser, or ValidateAgentProbe).
ProbeOutcome RunHostProbeOnce(const ProbeSpec& probe);

}  // namespace faultline::probes
