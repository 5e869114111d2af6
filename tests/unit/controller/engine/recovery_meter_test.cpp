#include "controller/engine/recovery_meter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string_view>

#include "controller/engine/verdict.h"

namespace faultline::engine {
namespace {

using namespace std::chrono_literals;

// A probe stream written as a picture: one sample per `interval` starting at `first`,
// '.' a success and 'X' a failure. Latency is 10ms for every sample.
std::vector<Sample> Stream(std::string_view picture, MonoTime first, Duration interval = 1s) {
  std::vector<Sample> out;
  for (size_t i = 0; i < picture.size(); ++i) {
    out.push_back({first + interval * static_cast<int64_t>(i), picture[i] == '.', 10ms});
  }
  return out;
}

RecoveryInput Window(MonoTime start, MonoTime end, Duration stable_for, Duration interval = 1s) {
  return {start, end, stable_for, interval};
}

TEST(RecoveryMeterTest, ImmediateRecoveryIsTheFirstSuccessAfterTheFirstFailure) {
  // Fault in effect at t=100s; the first sample after it fails, then all succeed.
  auto samples = Stream("....X.....", 96s);
  RecoveryFigures f = MeasureRecovery(samples, Window(100s, 200s, 0s));
  ASSERT_TRUE(f.time_to_detect.has_value());
  EXPECT_EQ(*f.time_to_detect, 0s);
  ASSERT_TRUE(f.time_to_recover.has_value());
  EXPECT_EQ(*f.time_to_recover, 1s);
  EXPECT_FALSE(f.no_impact);
  EXPECT_EQ(f.samples, 6);
  EXPECT_EQ(f.failures, 1);
}

TEST(RecoveryMeterTest, RecoveryIsTheStartOfTheFirstRunLastingStableFor) {
  // t=0..: X X . X . . X . . . . .  — runs starting at 2s (span 0), 4s (span 1s), 7s (span 4s).
  auto samples = Stream("XX.X..X.....", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 100s, 3s));
  ASSERT_TRUE(f.time_to_recover.has_value());
  EXPECT_EQ(*f.time_to_recover, 7s);
  EXPECT_EQ(*f.time_to_detect, 0s);
  // With a shorter stability requirement the earlier run qualifies.
  RecoveryFigures quick = MeasureRecovery(samples, Window(0s, 100s, 1s));
  EXPECT_EQ(*quick.time_to_recover, 4s);
  RecoveryFigures zero = MeasureRecovery(samples, Window(0s, 100s, 0s));
  EXPECT_EQ(*zero.time_to_recover, 2s);
}

TEST(RecoveryMeterTest, NeverRecoveringLeavesTimeToRecoverUnset) {
  auto samples = Stream(".X.X.XXXXX", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 10s, 2s));
  ASSERT_TRUE(f.time_to_detect.has_value());
  EXPECT_EQ(*f.time_to_detect, 1s);
  EXPECT_FALSE(f.time_to_recover.has_value());
  EXPECT_FALSE(f.no_impact);
}

TEST(RecoveryMeterTest, StableRunThatNeedsSamplesBeyondTheWindowIsNotARecovery) {
  // Successes from t=2s onwards, but the window closes at 5s: the in-window run spans 2s..4s,
  // shorter than the 3s required, even though later samples would have made it.
  auto samples = Stream("XX..........", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 5s, 3s));
  EXPECT_FALSE(f.time_to_recover.has_value());
  RecoveryFigures wider = MeasureRecovery(samples, Window(0s, 6s, 3s));
  ASSERT_TRUE(wider.time_to_recover.has_value());
  EXPECT_EQ(*wider.time_to_recover, 2s);
}

TEST(RecoveryMeterTest, NoFailureMeansRecoveredAtZeroWithNoImpact) {
  auto samples = Stream("..........", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 10s, 3s));
  EXPECT_TRUE(f.no_impact);
  ASSERT_TRUE(f.time_to_recover.has_value());
  EXPECT_EQ(*f.time_to_recover, 0s);
  EXPECT_FALSE(f.time_to_detect.has_value());
  EXPECT_DOUBLE_EQ(f.availability, 1.0);
  EXPECT_EQ(f.downtime, 0s);
}

TEST(RecoveryMeterTest, SamplesOutsideTheWindowAreIgnored) {
  // Failures before the start and at/after the end must not count.
  auto samples = Stream("XXX.....XXX", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(3s, 8s, 0s));
  EXPECT_TRUE(f.no_impact);
  EXPECT_EQ(f.samples, 5);
  EXPECT_EQ(f.failures, 0);
  EXPECT_DOUBLE_EQ(f.availability, 1.0);
}

TEST(RecoveryMeterTest, AfterRevertWindowIsMeasuredFromTheRevert) {
  // Fault from 0s, reverted at 10s (last revert ack). The service stays broken for two more
  // samples after the revert, then is healthy.
  auto samples = Stream("..XXXXXXXXXX..........", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(10s, 22s, 2s));
  ASSERT_TRUE(f.time_to_detect.has_value());
  EXPECT_EQ(*f.time_to_detect, 0s);
  ASSERT_TRUE(f.time_to_recover.has_value());
  EXPECT_EQ(*f.time_to_recover, 2s);
  EXPECT_EQ(f.samples, 12);
  EXPECT_EQ(f.failures, 2);
  EXPECT_EQ(f.downtime, 2s);
}

TEST(RecoveryMeterTest, AvailabilityAndDowntimeOnAHandComputedStream) {
  // Window [0s, 10s): . . X X X . . X . .  → 6/10 available; downtime 2s→5s (3s) + 7s→8s (1s).
  auto samples = Stream("..XXX..X..", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 10s, 0s));
  EXPECT_DOUBLE_EQ(f.availability, 0.6);
  EXPECT_EQ(f.downtime, 4s);
  EXPECT_EQ(f.samples, 10);
  EXPECT_EQ(f.failures, 4);
  EXPECT_EQ(*f.time_to_detect, 2s);
  EXPECT_EQ(*f.time_to_recover, 5s);

  // A failing stretch still open at the window end counts until the end; irregular spacing.
  std::vector<Sample> irregular = {{0ms, true, 1ms},    {400ms, false, 1ms},  {1500ms, false, 1ms},
                                   {1700ms, true, 1ms}, {2600ms, false, 1ms}, {3000ms, false, 1ms}};
  RecoveryFigures g = MeasureRecovery(irregular, Window(0ms, 4200ms, 0ms, 500ms));
  EXPECT_EQ(g.downtime, 1300ms + 1600ms);
  EXPECT_DOUBLE_EQ(g.availability, 2.0 / 6.0);
  EXPECT_EQ(*g.time_to_detect, 400ms);
  EXPECT_EQ(*g.time_to_recover, 1700ms);
}

TEST(RecoveryMeterTest, UncertaintyIsTheFarthestBracketEndNotTheInterval) {
  // Recovered at 250ms; the last failure was sent at 0, the first success answered at 260ms.
  auto samples = Stream("X...", 0s, 250ms);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 1s, 0s, 250ms));
  EXPECT_EQ(*f.time_to_recover, 250ms);
  ASSERT_TRUE(f.recover_bracket.has_value());
  EXPECT_EQ(f.recover_bracket->lo, 0ms);
  EXPECT_EQ(f.recover_bracket->hi, 260ms);
  EXPECT_EQ(f.uncertainty, 250ms);
  // A slow success widens the upper end only: the bracket is asymmetric.
  samples[1].latency = 900ms;
  samples[2].latency = 900ms;
  samples[3].latency = 900ms;
  RecoveryFigures slow = MeasureRecovery(samples, Window(0s, 1s, 0s, 250ms));
  EXPECT_EQ(slow.recover_bracket->lo, 0ms);
  EXPECT_EQ(slow.recover_bracket->hi, 1150ms);
  EXPECT_EQ(slow.uncertainty, 900ms);
}

TEST(RecoveryMeterTest, DetectionBracketRunsFromTheLastSuccessSentToTheFailuresAnswer) {
  // Healthy samples before the window count for the lower end (the steady state).
  auto samples = Stream("..XX..", 0s);  // sends at 0..5s, answers 10ms later
  RecoveryFigures f = MeasureRecovery(samples, Window(2s, 10s, 0s));
  ASSERT_TRUE(f.time_to_detect.has_value());
  EXPECT_EQ(*f.time_to_detect, 0s);
  ASSERT_TRUE(f.detect_bracket.has_value());
  EXPECT_EQ(f.detect_bracket->lo, -1s);      // the success sent at 1s, before the window
  EXPECT_EQ(f.detect_bracket->hi, 10ms);     // the failure sent at 2s answered at 2.01s
  EXPECT_EQ(f.recover_bracket->lo, 1s);      // the failure sent at 3s
  EXPECT_EQ(f.recover_bracket->hi, 2010ms);  // the success sent at 4s answered at 4.01s
  // Failing from the very first sample: no success bounds the onset, so no bracket.
  RecoveryFigures never_healthy = MeasureRecovery(Stream("XX..", 0s), Window(0s, 10s, 0s));
  EXPECT_TRUE(never_healthy.time_to_detect.has_value());
  EXPECT_FALSE(never_healthy.detect_bracket.has_value());
}

TEST(RecoveryMeterTest, ASlowFailureAnsweredLateDoesNotReorderTheVerdict) {
  // Open-loop: the failure sent at 1s takes 3s and answers at 4s, after the successes sent at 2s
  // and 3s answered. Samples arrive in answer order; the figures are those of send order.
  std::vector<Sample> by_answer = {{0s, true, 10ms},  {2s, true, 10ms}, {3s, true, 10ms},
                                   {1s, false, 3s},   {4s, true, 10ms}, {5s, true, 10ms},
                                   {6s, false, 10ms}, {7s, true, 10ms}};
  RecoveryFigures f = MeasureRecovery(by_answer, Window(500ms, 10s, 0s));
  EXPECT_EQ(*f.time_to_detect, 500ms);
  EXPECT_EQ(f.detect_bracket->lo, -500ms);  // the success sent at 0
  EXPECT_EQ(f.detect_bracket->hi, 3500ms);  // the slow failure's own answer
  // The successes sent at 2s and 3s, while the only failure was still unanswered, may have
  // reached the service before it failed: they do not end the outage. The one sent at 4s, once
  // the failure was known, does; the bracket starts at the failure's send, not its answer.
  EXPECT_EQ(*f.time_to_recover, 3500ms);
  EXPECT_EQ(f.recover_bracket->lo, 500ms);
  EXPECT_EQ(f.recover_bracket->hi, 3510ms);
  EXPECT_EQ(f.samples, 7);
  EXPECT_EQ(f.failures, 2);
}

TEST(RecoveryMeterTest, SuccessesSentBeforeAnyFailureAnsweredNeverEndTheOutage) {
  // Negative control: the failure sent at 1s answers at 9s; every success is sent before that,
  // so none of them proves the service recovered (they may all predate the failure).
  std::vector<Sample> samples = {
      {0s, true, 10ms}, {1s, false, 8s}, {2s, true, 10ms}, {3s, true, 10ms}, {4s, true, 10ms}};
  RecoveryFigures f = MeasureRecovery(samples, Window(500ms, 6s, 0s));
  ASSERT_TRUE(f.time_to_detect.has_value());
  EXPECT_FALSE(f.time_to_recover.has_value());
  EXPECT_FALSE(f.recover_bracket.has_value());
  EXPECT_FALSE(f.no_impact);
}

// ---------------------------------------------------------------------------------------------
// Property tests: synthetic open-loop streams against a service whose true failure onset and
// recovery instants are known. Every sample observes the service at some instant between its
// send and its answer; the brackets must contain the true instants whatever the failing
// requests' latency (1x, 3x, 10x the interval, or failing fast).

constexpr MonoTime kNever = MonoTime(std::numeric_limits<int64_t>::max());

struct Truth {
  MonoTime onset = kNever;     // the service fails from here...
  MonoTime recovery = kNever;  // ...and is healthy again from here
  bool BadAt(MonoTime t) const { return t >= onset && t < recovery; }
};

struct StreamShape {
  Duration interval{};
  double fail_factor = 1;  // a failing request's latency, in intervals (0: fails fast, ~1ms)
};

// An open-loop stream from `from` to `until`: a send every interval (+ up to 2ms of scheduler
// jitter), at most ceil(timeout / interval) + 1 (4..64) in flight as ProbeSet bounds them; a
// sample answers after a good (1ms..interval/2) or a failing latency, and observes the service at
// a random point of its flight. Returned in ANSWER order, as a ProbeSet's observer sees them.
std::vector<Sample> OpenLoopStream(std::mt19937_64& rng, const Truth& truth,
                                   const StreamShape& shape, MonoTime from, MonoTime until) {
  const Duration bad_latency =
      shape.fail_factor == 0
          ? Duration(1ms)
          : std::chrono::duration_cast<Duration>(shape.interval * shape.fail_factor);
  const Duration timeout = bad_latency + bad_latency / 10;
  const int64_t bound = std::clamp<int64_t>(
      (timeout.count() + shape.interval.count() - 1) / shape.interval.count() + 1, 4, 64);
  std::uniform_real_distribution<double> unit(0, 1);
  auto between = [&](Duration lo, Duration hi) {
    return lo + Duration(static_cast<int64_t>(unit(rng) * static_cast<double>((hi - lo).count())));
  };
  std::vector<Sample> out;
  for (MonoTime slot = from; slot < until; slot += shape.interval) {
    const MonoTime sent = slot + between(0ms, 2ms);
    const auto in_flight = std::count_if(out.begin(), out.end(),
                                         [&](const Sample& s) { return s.AnsweredAt() > sent; });
    if (in_flight >= bound) continue;  // a skipped slot: no sample
    const double p = unit(rng);
    const Duration good = between(1ms, shape.interval / 2);
    const Duration bad = between(bad_latency - bad_latency / 10, bad_latency + bad_latency / 10);
    // The outcome is the service's state where the request reached it; pick a consistent one.
    Sample s;
    s.at = sent;
    const MonoTime seen_if_bad = sent + Duration(static_cast<int64_t>(p * bad.count()));
    const MonoTime seen_if_good = sent + Duration(static_cast<int64_t>(p * good.count()));
    if (truth.BadAt(seen_if_bad)) {
      s.ok = false;
      s.latency = bad;
    } else if (!truth.BadAt(seen_if_good)) {
      s.ok = true;
      s.latency = good;
    } else {  // neither is consistent near a transition: observed at the send itself
      s.ok = !truth.BadAt(sent);
      s.latency = s.ok ? good : bad;
    }
    s.answered = sent + s.latency;
    out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(), [](const Sample& a, const Sample& b) {
    return a.AnsweredAt() < b.AnsweredAt();
  });
  return out;
}

bool Contains(const Bracket& b, Duration truth) { return b.lo <= truth && truth <= b.hi; }

class OpenLoopBracketTest : public testing::TestWithParam<double> {};

TEST_P(OpenLoopBracketTest, BracketsAlwaysContainTheTrueInstants) {
  std::mt19937_64 rng(20261207);  // fixed: a failure names a reproducible stream
  const Duration intervals[] = {100ms, 250ms, 1s};
  int measured = 0;
  for (int n = 0; n < 300; ++n) {
    const StreamShape shape{intervals[n % 3], GetParam()};
    const MonoTime start = 100s;  // t_inject
    std::uniform_int_distribution<int64_t> ms(0, 1000);
    Truth truth;
    truth.onset = start - shape.interval / 2 + (shape.interval * 3) * ms(rng) / 1000;
    truth.recovery = truth.onset + 2 * shape.interval + 8s * ms(rng) / 1000;
    const Duration stable_for = 1s * (n % 3);
    const MonoTime end = start + 20s;
    auto samples = OpenLoopStream(rng, truth, shape, start - 30s, end + 1s);
    RecoveryFigures f = MeasureRecovery(samples, {start, end, stable_for, shape.interval});
    SCOPED_TRACE("stream " + std::to_string(n));
    if (f.no_impact) continue;  // the failure slipped between two observations: nothing to bound
    ++measured;
    ASSERT_TRUE(f.detect_bracket.has_value());
    ASSERT_TRUE(f.recover_bracket.has_value());
    EXPECT_TRUE(Contains(*f.detect_bracket, truth.onset - start))
        << "onset " << (truth.onset - start).count() << "ns not in ["
        << f.detect_bracket->lo.count() << ", " << f.detect_bracket->hi.count() << "]";
    EXPECT_TRUE(Contains(*f.recover_bracket, truth.recovery - start))
        << "recovery " << (truth.recovery - start).count() << "ns not in ["
        << f.recover_bracket->lo.count() << ", " << f.recover_bracket->hi.count() << "]";
    EXPECT_TRUE(Contains(*f.detect_bracket, *f.time_to_detect));
    EXPECT_TRUE(Contains(*f.recover_bracket, *f.time_to_recover));
    // Open-loop keeps the recovery's resolution at about one interval (plus the jitter and the
    // good answer's latency, at most half an interval here) however slow the failures are, once
    // a failure has answered before the recovery; a recovery faster than that waits for it.
    const Duration slowest_failure =
        shape.fail_factor == 0
            ? Duration(2ms)
            : std::chrono::duration_cast<Duration>(shape.interval * shape.fail_factor * 1.1);
    const Duration width = f.recover_bracket->hi - f.recover_bracket->lo;
    if (truth.recovery > truth.onset + slowest_failure + shape.interval) {
      EXPECT_LE(width, shape.interval * 3 / 2 + 2ms);
    } else {
      EXPECT_LE(width, shape.interval * 5 / 2 + 2ms + slowest_failure);
    }
    // The verdict follows the bracket: a target at its upper end passes, one just below its
    // lower end fails for certain, one inside it fails as inconclusive.
    for (auto [target, want, inconclusive] :
         {std::tuple{f.recover_bracket->hi, ObjectiveVerdict::kPass, false},
          std::tuple{f.recover_bracket->lo - 1ns, ObjectiveVerdict::kFail, false},
          std::tuple{f.recover_bracket->hi - 1ns, ObjectiveVerdict::kFail, true}}) {
      experiment::Objective o;
      o.name = "failover";
      o.probe = "api";
      o.recover_within = target;
      o.stable_for = stable_for;
      ProbeRecord rec;
      rec.name = "api";
      rec.interval = shape.interval;
      for (const Sample& s : samples) rec.samples.push_back({s, s.ok ? "200" : "503"});
      std::vector<experiment::Objective> objectives{o};
      std::vector<ProbeRecord> probes{rec};
      VerdictInput in;
      in.objectives = objectives;
      in.probes = probes;
      in.t_inject = start;
      in.t_revert_start = end;
      in.t_revert = end;
      in.end_of_observation = end + 1s;
      VerdictOutcome v = DecideVerdict(in);
      ASSERT_EQ(v.objectives.size(), 1u);
      EXPECT_EQ(v.objectives[0].verdict, want) << v.objectives[0].note;
      EXPECT_EQ(v.objectives[0].inconclusive, inconclusive) << v.objectives[0].note;
    }
  }
  EXPECT_GT(measured, 250);  // the streams did exercise detection and recovery
}

// Negative controls on the same generator: a service that never recovers is never "recovered",
// and one that never fails is "no impact observed", with no bracket claimed for either.
TEST_P(OpenLoopBracketTest, NeverRecoveringAndNeverFailingStreamsClaimNoBracket) {
  std::mt19937_64 rng(7);
  const StreamShape shape{250ms, GetParam()};
  const MonoTime start = 100s, end = 120s;
  for (int n = 0; n < 20; ++n) {
    Truth down;
    down.onset = start + 300ms;  // recovery: never
    RecoveryFigures f = MeasureRecovery(OpenLoopStream(rng, down, shape, start - 5s, end + 1s),
                                        {start, end, 0s, shape.interval});
    EXPECT_TRUE(f.time_to_detect.has_value());
    EXPECT_FALSE(f.time_to_recover.has_value());
    EXPECT_FALSE(f.recover_bracket.has_value());
    EXPECT_FALSE(f.no_impact);
    ASSERT_TRUE(f.detect_bracket.has_value());
    EXPECT_TRUE(Contains(*f.detect_bracket, down.onset - start));

    RecoveryFigures healthy =
        MeasureRecovery(OpenLoopStream(rng, Truth{}, shape, start - 5s, end + 1s),
                        {start, end, 0s, shape.interval});
    EXPECT_TRUE(healthy.no_impact);
    EXPECT_EQ(healthy.time_to_recover, Duration(0));
    EXPECT_FALSE(healthy.time_to_detect.has_value());
    EXPECT_FALSE(healthy.detect_bracket.has_value());
    EXPECT_FALSE(healthy.recover_bracket.has_value());
  }
}

// Failing requests take 1x, 3x and 10x the interval, or fail fast (0: ~1ms).
INSTANTIATE_TEST_SUITE_P(FailingLatency, OpenLoopBracketTest, testing::Values(1.0, 3.0, 10.0, 0.0),
                         [](const testing::TestParamInfo<double>& p) {
                           return p.param == 0
                                      ? std::string("FailFast")
                                      : "Fail" + std::to_string(static_cast<int>(p.param)) +
                                            "xInterval";
                         });

TEST(RecoveryMeterTest, EmptyWindowObservedNothing) {
  auto samples = Stream("XX..", 0s);
  RecoveryFigures f = MeasureRecovery(samples, Window(100s, 200s, 0s));
  EXPECT_EQ(f.samples, 0);
  EXPECT_FALSE(f.no_impact);
  EXPECT_FALSE(f.time_to_recover.has_value());
  EXPECT_FALSE(f.time_to_detect.has_value());
  EXPECT_DOUBLE_EQ(f.availability, 1.0);
}

TEST(RecoveryMeterTest, LatencyPercentilesUseNearestRankOverSuccesses) {
  std::vector<Sample> samples;
  for (int i = 1; i <= 100; ++i) {
    samples.push_back({i * 1s, true, i * 1ms});
    samples.push_back({i * 1s + 500ms, false, 5s});  // failures (timeouts) are left out
  }
  LatencyPercentiles p = ComputeLatency(samples);
  EXPECT_EQ(p.count, 100);
  EXPECT_EQ(p.p50, 50ms);
  EXPECT_EQ(p.p90, 90ms);
  EXPECT_EQ(p.p99, 99ms);
  EXPECT_EQ(p.max, 100ms);

  LatencyPercentiles small = ComputeLatency({{0s, true, 30ms}, {1s, true, 10ms}, {2s, true, 20ms}});
  EXPECT_EQ(small.p50, 20ms);
  EXPECT_EQ(small.p90, 30ms);
  EXPECT_EQ(small.max, 30ms);
}

TEST(RecoveryMeterTest, LatencyFallsBackToAllSamplesWhenNoneSucceeded) {
  LatencyPercentiles p = ComputeLatency({{0s, false, 1s}, {1s, false, 2s}});
  EXPECT_EQ(p.count, 2);
  EXPECT_EQ(p.p50, 1s);
  EXPECT_EQ(p.max, 2s);
  LatencyPercentiles none = ComputeLatency({});
  EXPECT_EQ(none.count, 0);
  EXPECT_EQ(none.max, 0s);
}

}  // namespace
}  // namespace faultline::engine
