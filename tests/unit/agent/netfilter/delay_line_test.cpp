// Delay line pieces that need no kernel: the correlated loss model, the evidence accounting of
// queued faults, and the kernel queue counters' parser.
#include "agent/nfqueue/delay_line.h"

#include <gtest/gtest.h>

#include "agent/netfilter/network_rules.h"

namespace faultline::agent::netfilter {
namespace {

using nfqueue::DelayLineStats;
using nfqueue::LossModel;

struct LossRun {
  double rate;         // fraction dropped
  double correlation;  // lag-1 correlation of decisions
  double mean_burst;   // mean length of a run of drops
};

LossRun Measure(double percent, double correlation, int n) {
  LossModel m(percent, correlation, 12345);
  int drops = 0, pairs_dd = 0, prev = 0, runs = 0;
  double sum_x = 0, sum_xy = 0;
  for (int i = 0; i < n; ++i) {
    int d = m.Drop() ? 1 : 0;
    drops += d;
    if (d && !prev) ++runs;
    if (i > 0) {
      sum_xy += prev * d;
      pairs_dd += prev * d;
    }
    sum_x += d;
    prev = d;
  }
  double p = sum_x / n;
  double cov = sum_xy / (n - 1) - p * p;
  return {p, cov / (p * (1 - p)), runs ? static_cast<double>(drops) / runs : 0.0};
}

TEST(LossModelTest, IndependentLossKeepsTheRateAndHasNoCorrelation) {
  LossRun r = Measure(10, 0.0, 200000);
  EXPECT_NEAR(r.rate, 0.10, 0.005);
  EXPECT_NEAR(r.correlation, 0.0, 0.02);
  EXPECT_NEAR(r.mean_burst, 1.0 / 0.9, 0.05);
}

TEST(LossModelTest, CorrelatedLossKeepsTheRateAndMakesBursts) {
  // c = 0.75 at 10%: P(drop | drop) = 0.775, so bursts average 1 / 0.225 = 4.4 packets.
  LossRun r = Measure(10, 0.75, 400000);
  EXPECT_NEAR(r.rate, 0.10, 0.01);
  EXPECT_NEAR(r.correlation, 0.75, 0.03);
  EXPECT_NEAR(r.mean_burst, 1.0 / 0.225, 0.3);
}

TEST(LossModelTest, EdgesDropAllOrNothing) {
  LossModel all(100, 0.5, 1), none(0, 0.5, 1);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(all.Drop());
    ASSERT_FALSE(none.Drop());
  }
}

TEST(QueuedFaultEvidenceTest, MatchedIsReceivedPlusFailOpenAndPartsAddUp) {
  DelayLineStats reinject, hold;
  reinject.packets_received = 1000;
  reinject.bytes_received = 1'000'000;
  reinject.packets_delayed = 950;
  reinject.bytes_delayed = 950'000;
  reinject.packets_passed_over_bound = 20;
  reinject.reinject_errors = 5;
  reinject.held_packets = 25;
  reinject.added_delay_sum_us = 950 * 50'000;
  reinject.added_delay_max_us = 51'000;
  hold.packets_received = 10;
  hold.bytes_received = 600;
  hold.packets_delayed = 10;
  hold.bytes_delayed = 600;
  hold.added_delay_sum_us = 10 * 50'000;
  hold.added_delay_max_us = 50'500;
  Evidence e = QueuedFaultEvidence({reinject, hold}, {7, 700}, /*latency=*/true);
  EXPECT_EQ(e["packets_matched"], 1017u);
  EXPECT_EQ(e["bytes_matched"], 1'001'300u);
  EXPECT_EQ(e["packets_fail_open"], 7u);
  EXPECT_EQ(e["packets_delayed"], 960u);
  EXPECT_EQ(e["packets_matched"], e["packets_delayed"] + e["packets_dropped"] +
                                      e["packets_passed_over_bound"] + e["reinject_errors"] +
                                      e["packets_held"] + e["packets_fail_open"]);
  EXPECT_LE(e["packets_delayed"], e["packets_matched"]);
  EXPECT_EQ(e["added_delay_mean_us"], 50'000u);
  EXPECT_EQ(e["added_delay_max_us"], 51'000u);
  EXPECT_EQ(e["fidelity_compromised"], 1u);
}

TEST(QueuedFaultEvidenceTest, CleanRunIsNotCompromised) {
  DelayLineStats s;
  s.packets_received = s.packets_delayed = 100;
  s.bytes_received = s.bytes_delayed = 6400;
  Evidence e = QueuedFaultEvidence({s}, {}, true);
  EXPECT_EQ(e["fidelity_compromised"], 0u);
  EXPECT_EQ(e["packets_matched"], e["packets_delayed"]);
  // Negative control: one packet around the line flips it.
  e = QueuedFaultEvidence({s}, {1, 64}, true);
  EXPECT_EQ(e["fidelity_compromised"], 1u);
}

TEST(QueuedFaultEvidenceTest, CorrelatedLossReportsDropsNotDelays) {
  DelayLineStats s;
  s.packets_received = 100;
  s.packets_delayed = 90;  // released at once
  s.packets_dropped = 10;
  Evidence e = QueuedFaultEvidence({s}, {}, /*latency=*/false);
  EXPECT_EQ(e["packets_dropped"], 10u);
  EXPECT_EQ(e.count("packets_delayed"), 0u);
  EXPECT_EQ(e["packets_matched"], 100u);
}

TEST(QueueProcStatsTest, ParsesOurQueueOnly) {
  std::string text =
      " 3100  12345     0 2 65535     0     0       42  1\n"
      " 3101  12346     3 2    64     7     9      100  1\n";
  auto r = nfqueue::ParseQueueProcStats(text, 3101);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 7u);
  EXPECT_EQ(r->second, 9u);
  EXPECT_FALSE(nfqueue::ParseQueueProcStats(text, 3102).ok());
}

}  // namespace
}  // namespace faultline::agent::netfilter
