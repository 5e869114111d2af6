// An experiment that matches no agent, for tests of the controller's run paths (supervisor,
// schedules, console): its only target selects role=db, which no test agent carries, so a run of
// it ends in ERROR at target resolution without connecting to any agent. Its probe runs `true`
// on the controller (allow it with command_probe_allowlist = {"true"}). Test-only; header-only.
#pragma once

#include <string>
#include <string_view>

namespace faultline::testing {

// The experiment's YAML, named `name` (metadata.name).
inline std::string UnmatchedExperiment(std::string_view name) {
  return "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: " + std::string(name) +
         R"(}
targets:
  db: {selector: {role: db}, mode: all}
faults:
  - name: dns
    target: db
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: 1m
probes:
  - name: ok
    command: {argv: ["true"]}
    interval: 100ms
steady_state: {probes: [ok], for: 100ms}
objectives:
  - {name: available, probe: ok, recover_within: 1m, stable_for: 100ms}
)";
}

}  // namespace faultline::testing
