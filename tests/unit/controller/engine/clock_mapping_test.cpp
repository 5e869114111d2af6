// Clock mapping for agent-side probes: round-trip offset estimation on synthetic offsets and
// asymmetric network delays, and the measurement's brackets on samples taken on an agent whose
// clock is mapped with that error. The bracket, widened by the mapping's error bound, must
// contain the true instant; without the widening it can miss it (the negative control).
#include "controller/engine/clock_mapping.h"

#include <gtest/gtest.h>

#include <random>

#include "controller/engine/recovery_meter.h"

namespace faultline::engine {
namespace {

using namespace std::chrono_literals;

// One exchange over a network with `forward` and `back` delays, the agent's clock ahead of the
// controller's by `offset`.
ClockExchange Exchange(MonoTime sent, Duration forward, Duration back, Duration offset) {
  return ClockExchange{sent, sent + forward + back, sent + forward + offset};
}

TEST(ClockMappingTest, KeepsTheShortestRoundTripAndItsHalfAsTheBound) {
  const Duration offset = 3s + 123us;
  std::vector<ClockExchange> ex = {
      Exchange(10s, 4ms, 1ms, offset),    // rtt 5ms
      Exchange(11s, 1us, 799us, offset),  // rtt 0.8ms, very asymmetric: the kept one
      Exchange(12s, 2ms, 2ms, offset),    // rtt 4ms
  };
  auto m = EstimateClockMapping(ex);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rtt, 800us);
  EXPECT_EQ(m->error_bound, 400us);
  EXPECT_LE((m->offset - offset < 0ns ? offset - m->offset : m->offset - offset), m->error_bound);
  // The asymmetry puts the estimate close to the edge of the bound, not at the truth.
  EXPECT_GT((m->offset - offset < 0ns ? offset - m->offset : m->offset - offset), 390us);
}

TEST(ClockMappingTest, RefusesNoExchangeAndAnAnswerBeforeItsRequest) {
  EXPECT_FALSE(EstimateClockMapping({}).ok());
  EXPECT_FALSE(EstimateClockMapping({ClockExchange{5s, 4s, 1s}}).ok());
}

TEST(ClockMappingTest, TheTrueOffsetIsAlwaysWithinTheBound) {
  std::mt19937_64 rng(20261207);
  std::uniform_int_distribution<int64_t> off(-3'600'000'000'000, 3'600'000'000'000);  // ±1h
  std::uniform_int_distribution<int64_t> delay(0, 50'000'000);                        // 0..50ms
  for (int run = 0; run < 2000; ++run) {
    const Duration offset(off(rng));
    std::vector<ClockExchange> ex;
    MonoTime t = 100s;
    for (int i = 0; i < 5; ++i) {
      ex.push_back(Exchange(t, Duration(delay(rng)), Duration(delay(rng)), offset));
      t += 60ms;
    }
    auto m = EstimateClockMapping(ex);
    ASSERT_TRUE(m.ok());
    const Duration err = m->offset > offset ? m->offset - offset : offset - m->offset;
    ASSERT_LE(err, m->error_bound) << "run " << run;
    // Any agent instant maps within the bound of the controller's true instant.
    const MonoTime truth = 500s;
    const MonoTime mapped = m->ToController(truth + offset);
    ASSERT_LE(mapped > truth ? mapped - truth : truth - mapped, m->error_bound);
  }
}

// A service down in [fail, recover) (controller clock), probed on an agent every `interval`;
// each sample observes the service at a random instant of its flight. The samples are stamped
// with the agent's clock and mapped back with `m`; `widen` decides whether they carry its bound.
std::vector<Sample> AgentStream(std::mt19937_64& rng, MonoTime fail, MonoTime recover,
                                Duration offset, const ClockMapping& m, bool widen) {
  std::uniform_int_distribution<int64_t> slow(1'000'000, 300'000'000);  // failing: 1..300ms
  std::uniform_int_distribution<int64_t> fast(500'000, 5'000'000);      // healthy: 0.5..5ms
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Sample> out;
  for (MonoTime t = 0s; t < recover + 5s; t += 100ms) {
    // Whether it would fail is decided by where it lands, so draw a latency per outcome.
    Duration lat(fast(rng));
    MonoTime seen = t + Duration(static_cast<int64_t>(u(rng) * lat.count()));
    bool ok = !(seen >= fail && seen < recover);
    if (!ok) {
      lat = Duration(slow(rng));
      seen = t + Duration(static_cast<int64_t>(u(rng) * lat.count()));
      ok = !(seen >= fail && seen < recover);
    }
    Sample s;
    s.at = m.ToController(t + offset);
    s.ok = ok;
    s.latency = lat;
    s.answered = m.ToController(t + lat + offset);
    s.clock_error = widen ? m.error_bound : 0ns;
    out.push_back(s);
  }
  return out;
}

bool Contains(const std::optional<Bracket>& b, Duration truth) {
  return b && b->lo <= truth && truth <= b->hi;
}

TEST(ClockMappingTest, WidenedBracketsContainTheTrueInstantsOnRandomStreams) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> off(-10'000'000'000, 10'000'000'000);
  std::uniform_int_distribution<int64_t> delay(0, 20'000'000);
  std::uniform_int_distribution<int64_t> when(2'000'000'000, 4'000'000'000);
  std::uniform_int_distribution<int64_t> outage(1'000'000'000, 3'000'000'000);
  for (int run = 0; run < 500; ++run) {
    const Duration offset(off(rng));
    std::vector<ClockExchange> ex;
    for (int i = 0; i < 5; ++i) {
      ex.push_back(
          Exchange(MonoTime(i * 50ms), Duration(delay(rng)), Duration(delay(rng)), offset));
    }
    auto m = EstimateClockMapping(ex);
    ASSERT_TRUE(m.ok());
    const MonoTime fail(when(rng));
    const MonoTime recover = fail + Duration(outage(rng));
    const MonoTime inject = fail - 10ms;
    auto samples = AgentStream(rng, fail, recover, offset, *m, true);
    RecoveryFigures f = MeasureRecovery(samples, RecoveryInput{inject, recover + 4s, 0s, 100ms});
    ASSERT_TRUE(f.time_to_recover.has_value()) << "run " << run;
    ASSERT_TRUE(Contains(f.recover_bracket, recover - inject))
        << "run " << run << " truth " << ToSeconds(recover - inject) << " bracket ["
        << ToSeconds(f.recover_bracket->lo) << ", " << ToSeconds(f.recover_bracket->hi) << "]";
    ASSERT_TRUE(Contains(f.detect_bracket, fail - inject)) << "run " << run;
  }
}

// The mapping is off by almost its whole bound (all delay on the way back), and the samples
// around the recovery are tight: the unwidened bracket misses the truth, the widened one holds it.
TEST(ClockMappingTest, WithoutWideningTheBracketMissesTheTruth) {
  const Duration offset = 2s;
  auto m = EstimateClockMapping({Exchange(0s, 0ns, 20ms, offset)});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->error_bound, 10ms);
  const MonoTime inject = 1s, recover = 3s;
  auto stream = [&](bool widen) {
    std::vector<Sample> out;
    for (MonoTime t = 0s; t < 6s; t += 1ms) {
      Sample s;
      s.ok = !(t >= 1s && t < recover);  // observed at its send instant; 1 ms latency
      s.at = m->ToController(t + offset);
      s.latency = 1ms;
      s.answered = m->ToController(t + 1ms + offset);
      s.clock_error = widen ? m->error_bound : 0ns;
      out.push_back(s);
    }
    return out;
  };
  const RecoveryInput in{inject, 5s, 0s, 1ms};
  RecoveryFigures unwidened = MeasureRecovery(stream(false), in);
  ASSERT_TRUE(unwidened.recover_bracket.has_value());
  EXPECT_FALSE(Contains(unwidened.recover_bracket, recover - inject));
  RecoveryFigures widened = MeasureRecovery(stream(true), in);
  EXPECT_TRUE(Contains(widened.recover_bracket, recover - inject));
  EXPECT_TRUE(Contains(widened.detect_bracket, 1s - inject));
}

}  // namespace
}  // namespace faultline::engine
