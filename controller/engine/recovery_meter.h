#pragma once
// RecoveryMeter: turns a probe's timestamped samples and the fault's apply/revert instants into
// time-to-detect, time-to-recover (each with a bracket that contains the true instant by
// construction), availability and downtime. Pure computation, no clock, no I/O: the definitions
// here are the product's core and are unit-tested on synthetic streams. docs/measurement.md
// states the same rules for users.
//
// What a sample proves: a probe attempt sent at S and answered at A observed the service at some
// instant in [S, A] (the request reached it somewhere in between; which instant is unknown).
// Samples are open-loop (controller/probes/probe_set.h): a slow answer does not delay the next
// send, and every rule below orders samples by their SEND instant, never by when they answered,
// so a sample answered late cannot reorder the verdict.
//
// Definitions (all instants on one monotonic clock):
//  - the measurement window starts at `start` (t_inject, the last apply ack; or t_revert, the
//    last revert ack, for `after: revert` objectives) and ends at `end` (for inject objectives,
//    the moment revert began; for revert objectives, the end of observation). It is half-open,
//    [start, end), and a sample belongs to it by its send instant.
//  - time to detect: send of the first failing sample F in the window, minus start.
//    Bracket: [send of the last successful sample sent before F (before the window too: the
//    steady state counts), answer of F]. The failure began after that success was sent (the
//    success observed the service healthy at some instant after its send) and before F answered
//    (F observed it failing at some instant before its answer). No success before F: no bracket.
//    The lower bound may be negative: a fault can bite on one target before the last apply ack.
//  - time to recover: send of G, the first sample of the first run of consecutive successes
//    after F whose span (send of the run's last success − send of G) is ≥ stable_for, minus
//    start; the run must lie inside the window, and G must be sent no earlier than the first
//    answer of a failing sample in the window (a success sent before any failure was known may
//    have reached the service before the failure began: answers do not come back in send
//    order). Bracket: [send of the last failing sample sent
//    before G, answer of G]: the service was failing at some instant after that failure was
//    sent and was healthy at some instant before G answered. The bracket may be asymmetric
//    around the point: a failing probe that takes 3 s to answer widens only what it must.
//    No failure at all → recovered at 0 with no_impact set and no bracket.
//    A window holding no sample at all observed nothing: neither detected nor recovered, and
//    no_impact stays false (samples == 0 tells the caller why).
//  - uncertainty: the largest distance from the recovery point to its bracket's ends (from the
//    detection point when not recovered; 0 when neither is bracketed), so "point ± uncertainty"
//    always covers the bracket. It is NOT the probe interval.
//  - availability: successes / samples in the window. downtime: for each failing stretch (in
//    send order), from its first failing sample's send to the next success's send (or window
//    end).
//  - a sample taken on an agent is mapped to this clock with an error bound e (clock_mapping.h):
//    a bracket's lower end drawn from it moves e earlier, an upper end e later.
// These brackets assume one outage per window, longer than a success takes to answer (a success
// sent before F saw the service before the failure, not after it ended); stable_for guards
// against counting a flap as the recovery.

#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"

namespace faultline::engine {

struct Sample {
  MonoTime at{};  // when the probe attempt was sent (it started)
  bool ok = false;
  Duration latency{};                  // as the probe measured it
  std::optional<MonoTime> answered{};  // when its outcome was known; unset: at + latency
  // Error bound of the clock mapping for a sample taken on another host (agent-side probe;
  // 0 here): `at` and `answered` are mapped to this clock and each may be off by up to this
  // much, so every bracket end drawn from this sample is widened by it.
  Duration clock_error{};
  MonoTime AnsweredAt() const { return answered.value_or(at + latency); }
};

// An interval [lo, hi] relative to the window's start that contains the true instant.
struct Bracket {
  Duration lo{};
  Duration hi{};
};

struct RecoveryInput {
  MonoTime start{};
  MonoTime end{};
  Duration stable_for{};
  Duration interval{};  // the probe's schedule (kept for callers; brackets do not use it)
};

struct RecoveryFigures {
  std::optional<Duration> time_to_detect;   // unset: no failure observed
  std::optional<Duration> time_to_recover;  // unset: not recovered inside the window
  std::optional<Bracket> detect_bracket;    // unset: no detection, or no success before it
  std::optional<Bracket> recover_bracket;   // unset: not recovered, or no impact
  bool no_impact = false;                   // no failing sample at all in the window
  Duration uncertainty{};
  double availability = 1.0;  // 1.0 when the window holds no sample
  Duration downtime{};
  int samples = 0;
  int failures = 0;
};

// `samples` in any order (they are ordered by send instant here; equal sends keep their input
// order). Samples sent outside the window are ignored, except that the detection bracket's
// lower bound may come from a success sent before the window. Pure; thread-safe.
RecoveryFigures MeasureRecovery(const std::vector<Sample>& samples, const RecoveryInput& in);

struct LatencyPercentiles {
  Duration p50{}, p90{}, p99{}, max{};
  int count = 0;
};
// Nearest-rank percentiles over successful samples' latency (all samples if none succeeded).
LatencyPercentiles ComputeLatency(const std::vector<Sample>& samples);

}  // namespace faultline::engine
