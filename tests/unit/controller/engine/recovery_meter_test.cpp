#include "controller/engine/recovery_meter.h"

#include <gtest/gtest.h>

#include <string_view>

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

TEST(RecoveryMeterTest, UncertaintyIsTheProbeInterval) {
  auto samples = Stream("X...", 0s, 250ms);
  RecoveryFigures f = MeasureRecovery(samples, Window(0s, 1s, 0s, 250ms));
  EXPECT_EQ(f.uncertainty, 250ms);
  EXPECT_EQ(*f.time_to_recover, 250ms);
}

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
