#pragma once
// RecoveryMeter: turns a probe's timestamped samples and the fault's apply/revert instants into
// time-to-detect, time-to-recover, availability and downtime. Pure computation, no clock, no I/O:
// the definitions here are the product's core and are unit-tested on synthetic streams.
//
// Definitions (all instants on one monotonic clock):
//  - the measurement window starts at `start` (t_inject, the last apply ack; or t_revert, the
//    last revert ack, for `after: revert` objectives) and ends at `end` (for inject objectives,
//    the moment revert began; for revert objectives, the end of observation).
//  - time to detect: first failing sample in the window, minus start.
//  - time to recover: start of the first run of consecutive successes, after the first failure,
//    whose span (last success − first success of the run) is ≥ stable_for, minus start; the run
//    must lie inside the window. No failure at all → recovered at 0 with no_impact set.
//    A window holding no sample at all observed nothing: neither detected nor recovered, and
//    no_impact stays false (samples == 0 tells the caller why).
//  - the window is half-open, [start, end): a sample started exactly at `end` is not in it.
//  - uncertainty: the probe interval (a transition happened somewhere between two samples).
//  - availability: successes / samples in the window. downtime: for each failing stretch, from
//    its first failing sample to the next success (or window end).

#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"

namespace faultline::engine {

struct Sample {
  MonoTime at{};  // when the probe attempt started
  bool ok = false;
  Duration latency{};
};

struct RecoveryInput {
  MonoTime start{};
  MonoTime end{};
  Duration stable_for{};
  Duration interval{};
};

struct RecoveryFigures {
  std::optional<Duration> time_to_detect;   // unset: no failure observed
  std::optional<Duration> time_to_recover;  // unset: not recovered inside the window
  bool no_impact = false;                   // no failing sample at all in the window
  Duration uncertainty{};
  double availability = 1.0;  // 1.0 when the window holds no sample
  Duration downtime{};
  int samples = 0;
  int failures = 0;
};

// `samples` must be ordered by `at` (probes append in order). Samples outside the window are
// ignored.
RecoveryFigures MeasureRecovery(const std::vector<Sample>& samples, const RecoveryInput& in);

struct LatencyPercentiles {
  Duration p50{}, p90{}, p99{}, max{};
  int count = 0;
};
// Nearest-rank percentiles over successful samples' latency (all samples if none succeeded).
LatencyPercentiles ComputeLatency(const std::vector<Sample>& samples);

}  // namespace faultline::engine
