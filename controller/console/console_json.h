#pragma once
// The console's JSON documents (docs/console-api.md "Types") from the controller's own records:
// RunRow from the run store, Agent from the registry and the fleet's fault list, Schedule from
// the store and its firings, and the trend of time to recover. Pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <vector>

#include "controller/daemon/agent_registry.h"
#include "controller/report/trend_report.h"
#include "controller/store/run_store.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::console {

// One RunRow; ttd/ttr and the recovery bracket come from the stored report's first objective
// (null when the run has no report yet).
std::string RunRowJson(const store::RunRecord& run);

// {"agents":[Agent]}: every agent the registry knows (live: "attached", gone: "lost"), with the
// active faults `faults` lists for it. `now_unix_ms` gives last_seen_s.
std::string FleetJson(const std::vector<daemon::AgentSnapshot>& agents,
                      const v1::ListFleetFaultsResponse& faults, int64_t now_unix_ms);

// One Schedule: next firing (null when paused or never) and the missed or skipped firings of
// `firings` with their reasons.
std::string ScheduleJson(const store::Schedule& schedule, const std::vector<store::Firing>& firings,
                         int64_t now_unix_ms);

// {"experiment","points":[{"run_id","at","ttr_s","bracket","verdict"}]} of one trend series
// (the objective named `objective`, else the first).
std::string TrendJson(const report::Trend& trend, const std::string& objective);

}  // namespace faultline::console
