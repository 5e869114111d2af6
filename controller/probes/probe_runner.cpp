#include "controller/probes/probe_runner.h"

#include <algorithm>

#include "common/clock.h"
#include "controller/probes/promql_probe.h"

namespace faultline::probes {

using experiment::Probe;

ProbeOutcome RunProbeOnce(const experiment::Probe& probe) {
  if (probe.kind == Probe::Kind::kPrometheus) {
    return PromQlProbe(probe, SystemClock::Instance()).TakeSample();
  }
  return RunHostProbeOnce(probe);
}

Status CheckCommandProbesAllowed(const experiment::Experiment& experiment,
                                 const std::vector<std::string>& allowed, const std::string& flag) {
  for (const Probe& p : experiment.probes) {
    if (p.kind != Probe::Kind::kCommand || p.from != "controller") continue;
    const std::string program = p.command.argv.empty() ? std::string() : p.command.argv[0];
    if (std::find(allowed.begin(), allowed.end(), program) != allowed.end()) continue;
    return Status(
        StatusCode::kPermissionDenied,
        "probe " + p.name + ": command probes run on the controller only for programs its own " +
            flag + " lists, and '" + program + "' is not one of them" +
            (allowed.empty() ? std::string(" (none is listed: command probes are off here)")
                             : std::string()) +
            "; run the probe from an agent target, or add the program to " + flag);
  }
  return Status::Ok();
}

}  // namespace faultline::probes
