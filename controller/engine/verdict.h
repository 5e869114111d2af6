#pragma once
// The verdict of a run: a pure function of what the run observed. No clock, no I/O, no
// threads: the same input always gives the same verdict, so every rule here is unit-tested on
// synthetic runs (tests/unit/controller/engine/verdict_test.cpp).
//
// Inputs: the experiment's objectives, each probe's timestamped samples, the agents'
// apply/revert acknowledgements (and what is known of each fault's state), and whether the run
// was aborted. Measurement itself (time to detect/recover, availability) is RecoveryMeter's
// (recovery_meter.h); this file turns those figures into verdicts.
//
// Rules, in order of precedence:
//  - an agent's fault state unknown → every objective UNKNOWN and the run ERROR: a run is never
//    "recovered" (PASS) when an agent could not confirm its fault's state;
//  - aborted → the run ABORTED (objectives are still measured and shown);
//  - any objective not PASS → the run FAIL; otherwise PASS.
// An objective: no sample in its window → UNKNOWN; not recovered in the window → FAIL;
// "no impact observed" → PASS with a warning. Otherwise the recovery bracket [lo, hi]
// (recovery_meter.h) decides against the target T = `recover_within`:
//   hi <= T → PASS (recovered within the target whatever the truth inside the bracket);
//   lo >  T → FAIL (recovered later than the target, certainly);
//   lo <= T < hi → FAIL, marked inconclusive: the samples cannot tell, and a gate fails safe
//   (the note says so and how to narrow the bracket: a shorter interval or probe timeout).
// The other kinds of objective are judged over the fault window [t_inject, t_revert_start):
//  - detect_within X, with the detection bracket [lo, hi] (hi: the first failing sample's
//    answer): hi <= X → PASS; lo > X → FAIL; otherwise FAIL, inconclusive (also when no success
//    preceded the failure, so lo is unknown, and hi > X). No failing sample → FAIL (missed).
//  - availability P: good samples / schedule slots in the window (AvailabilityFigure) >= P → PASS,
//    else FAIL.
//  - latency {percentile N, below B}: fewer successful samples than min_samples → FAIL,
//    inconclusive; otherwise the nearest-rank pN of their latency < B → PASS, else FAIL.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "controller/engine/recovery_meter.h"
#include "controller/experiment/experiment.h"
#include "controller/probes/probe_set.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::engine {

enum class Verdict { kPass, kFail, kAborted, kError };
enum class ObjectiveVerdict { kPass, kFail, kUnknown };

const char* VerdictName(Verdict v);                    // "PASS", "FAIL", "ABORTED", "ERROR"
const char* ObjectiveVerdictName(ObjectiveVerdict v);  // "PASS", "FAIL", "UNKNOWN"
// The `faultline run` exit code: 0 PASS, 1 FAIL, 3 ABORTED, 4 ERROR.
int ExitCodeFor(Verdict v);

using ProbeSample = probes::ProbeSample;
using ProbeRecord = probes::ProbeRecord;

// One fault on one agent.
struct FaultOnAgent {
  std::string fault_name;
  std::string fault_id;
  std::string target;
  std::string agent;
  std::string kind;  // "dns"
  // The workload (container, pod, handle) the fault acts in on `agent`; unset: the agent's host.
  std::optional<v1::Workload> workload;
  std::optional<MonoTime> applied_at;      // when the apply ack arrived
  std::optional<MonoTime> reverted_at;     // when the revert ack arrived
  std::optional<MonoTime> last_confirmed;  // last successful lease renewal
  int64_t applied_at_unix_ms = 0;
  int64_t reverted_at_unix_ms = 0;
  std::string revert_reason;  // as the agent reported it
  std::map<std::string, uint64_t> evidence;
  std::string error;           // apply/renew/revert failure, empty when none
  bool state_unknown = false;  // the agent could not confirm the fault's state
};

// An availability objective's measurement over the fault window: every schedule slot of the
// probe whose send instant lies in the window counts once; a slot that was skipped (in-flight
// bound reached, or the schedule ran late) counts as not good, since nothing showed the service
// good then.
struct AvailabilityFigure {
  double min = 0;       // the objective's limit, a share in (0, 1]
  double measured = 0;  // good / slots (0 when slots == 0)
  int good = 0;         // successful samples sent in the window
  int slots = 0;        // samples sent in the window + skipped slots in it
  int skipped = 0;      // skipped slots in the window
};

// A latency objective's measurement: the nearest-rank percentile of the latency of successful
// samples sent in the fault window.
struct LatencyFigure {
  experiment::LatencyObjective limit;
  std::optional<Duration> measured;  // unset: fewer successful samples than limit.min_samples
  int samples = 0;                   // successful samples sent in the window
  int failures = 0;                  // failing samples sent in the window (not counted)
};

struct ObjectiveResult {
  std::string name;
  std::string probe;
  experiment::Objective::Kind kind = experiment::Objective::Kind::kRecover;
  experiment::Objective::Phase phase = experiment::Objective::Phase::kInject;
  // The time limit: recover_within, detect_within or the latency bound; 0 for availability.
  Duration target{};
  Duration stable_for{};
  RecoveryFigures figures;
  std::optional<AvailabilityFigure> availability;  // set for availability objectives
  std::optional<LatencyFigure> latency;            // set for latency objectives
  ObjectiveVerdict verdict = ObjectiveVerdict::kUnknown;
  // FAIL only because the samples cannot tell: a bracket straddles the target (recovery,
  // detection), or too few samples for the percentile (latency).
  bool inconclusive = false;
  std::string note;  // why, in words ("recovered 0.8s after inject", "no impact observed", ...)
};

// What a run observed, once observation is over. Spans must stay valid during the call.
struct VerdictInput {
  std::span<const experiment::Objective> objectives;
  std::span<const ProbeRecord> probes;  // samples ordered by time; an objective's probe by name
  std::span<const FaultOnAgent> faults;
  std::optional<MonoTime> t_inject;        // last apply ack; unset: never in effect everywhere
  std::optional<MonoTime> t_revert_start;  // revert began (end of the "during fault" window)
  std::optional<MonoTime> t_revert;        // last revert ack (start of `after: revert`)
  MonoTime end_of_observation{};
  bool aborted = false;
  std::string abort_reason;  // the run's reason when aborted
};

struct VerdictOutcome {
  Verdict verdict = Verdict::kError;
  std::string reason;                       // one line: why this verdict
  std::vector<ObjectiveResult> objectives;  // one per objective, in the experiment's order
  std::vector<std::string> warnings;        // e.g. "no impact observed" on an objective
};

// Decides the verdict of every objective and of the run (rules above). Pure; thread-safe.
VerdictOutcome DecideVerdict(const VerdictInput& in);

}  // namespace faultline::engine
