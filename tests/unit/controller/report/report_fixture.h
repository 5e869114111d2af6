#pragma once
// A synthetic finished run for the renderer tests: one DNS fault on one agent, one probe sampled
// every 250 ms for 30 s that fails from +6.3 s to +9.8 s, and two objectives. Instants are exact
// multiples of a millisecond so the JSON round trip is exact.

#include <chrono>
#include <string>

#include "controller/engine/run_engine.h"

namespace faultline::report::testing {

// How many times `what` occurs in `s`.
inline size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

inline engine::RunResult SampleRun(bool failover = true) {
  using namespace std::chrono_literals;
  engine::RunResult r;
  r.experiment = "dynamodb-dns-failover";
  r.run_id = "r-20261122-190304-abcd";
  r.started = MonoTime(1000s);
  r.started_unix_ms = 1795374184250;  // 2026-11-22T19:03:04.250Z
  r.t_inject_first = r.started + 5s;
  r.t_inject = r.started + 5050ms;
  r.t_revert_start = r.started + 25s;
  r.t_revert = r.started + 25100ms;
  r.ended = r.started + 30s;
  r.ended_unix_ms = r.started_unix_ms + 30000;
  r.targets["app"] = {"fl-app"};
  engine::FaultOnAgent fa;
  fa.fault_name = "dynamodb-dns";
  fa.fault_id = r.run_id + "-0";
  fa.target = "app";
  fa.agent = "fl-app";
  fa.kind = "dns";
  fa.applied_at = r.t_inject;
  fa.reverted_at = r.t_revert;
  fa.applied_at_unix_ms = r.started_unix_ms + 5050;
  fa.reverted_at_unix_ms = r.started_unix_ms + 25100;
  fa.revert_reason = "request";
  fa.evidence = {{"queries_faulted", 57}, {"queries_passed", 12}};
  r.faults.push_back(fa);

  engine::ProbeRecord p;
  p.name = "orders-api";
  p.interval = 250ms;
  for (int i = 0; i < 120; ++i) {
    Duration at = i * 250ms;
    bool ok = failover ? (at < 6300ms || at > 9800ms) : (at < 6300ms || at > 25100ms);
    p.samples.push_back({engine::Sample{r.started + at, ok, ok ? 3ms : 1000ms},
                         ok ? "200" : "503 dependency unavailable"});
  }
  p.latency = {3ms, 4ms, 1000ms, 1000ms, 120};
  r.probes.push_back(p);

  engine::ObjectiveResult o;
  o.name = "automated-failover";
  o.probe = "orders-api";
  o.target = 15s;
  o.stable_for = 3s;
  o.figures.time_to_detect = 1250ms;
  o.figures.uncertainty = 250ms;
  o.figures.samples = 80;
  if (failover) {
    o.figures.time_to_recover = 5000ms;
    o.figures.detect_bracket = engine::Bracket{1000ms, 1253ms};
    o.figures.recover_bracket = engine::Bracket{4750ms, 5003ms};
    o.figures.failures = 14;
    o.figures.availability = 66.0 / 80;
    o.figures.downtime = 3500ms;
    o.verdict = engine::ObjectiveVerdict::kPass;
    o.note = "recovered 5.00s after inject (truth in [4.75s, 5.00s]) (target 15s)";
  } else {
    o.figures.failures = 76;
    o.figures.availability = 4.0 / 80;
    o.figures.downtime = 18700ms;
    o.verdict = engine::ObjectiveVerdict::kFail;
    o.note = "not recovered within the 19.95s window after inject (target 15s)";
  }
  r.objectives.push_back(o);
  engine::ObjectiveResult after;
  after.name = "clean-after-revert";
  after.probe = "orders-api";
  after.phase = experiment::Objective::Phase::kRevert;
  after.target = 30s;
  after.stable_for = 2s;
  after.figures.time_to_recover = 0s;
  after.figures.no_impact = true;
  after.figures.uncertainty = 250ms;
  after.figures.samples = 19;
  after.verdict = engine::ObjectiveVerdict::kPass;
  after.note = "healthy throughout the 4.90s after revert";
  r.objectives.push_back(after);
  r.verdict = failover ? engine::Verdict::kPass : engine::Verdict::kFail;
  r.reason = failover ? "every objective met"
                      : "objective automated-failover missed: " + r.objectives[0].note;
  return r;
}

}  // namespace faultline::report::testing
