#include "agent/netfilter/network_rules.h"

#include <gtest/gtest.h>

namespace faultline::agent::netfilter {
namespace {

v1::NetworkFault Blackhole() {
  v1::NetworkFault f;
  f.mutable_blackhole();
  return f;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(NetworkRulesTest, ControlPortIsExemptedBeforeAnyFaultRule) {
  NetworkRuleOptions o;
  o.control_port = 7070;
  std::string b = NetworkApplyBatch("faultline_x", Blackhole(), o, {});
  size_t exempt = b.find("add rule inet faultline_x out tcp sport 7070 accept");
  size_t drop = b.find("add rule inet faultline_x out counter name \"matched\"");
  ASSERT_NE(exempt, std::string::npos) << b;
  ASSERT_NE(drop, std::string::npos) << b;
  EXPECT_LT(exempt, drop);
  EXPECT_TRUE(Contains(b, "add rule inet faultline_x in tcp dport 7070 accept"));
  EXPECT_TRUE(Contains(b, "oif lo accept")) << "no peers named: loopback stays untouched";
}

TEST(NetworkRulesTest, BatchReplacesALeftoverTableAtomically) {
  std::string b = NetworkApplyBatch("faultline_x", Blackhole(), {}, {});
  EXPECT_EQ(b.rfind("add table inet faultline_x\ndelete table inet faultline_x\nadd table", 0), 0u);
}

TEST(NetworkRulesTest, DirectionAndPortsSelectChainsAndFields) {
  v1::NetworkFault f = Blackhole();
  f.mutable_match()->set_direction(v1::NetworkSelector::EGRESS);
  f.mutable_match()->set_protocol(v1::NetworkSelector::TCP);
  f.mutable_match()->add_remote_ports(8000);
  f.mutable_match()->add_cidrs("10.77.0.20");
  std::string b = NetworkApplyBatch("faultline_x", f, {}, {});
  EXPECT_FALSE(Contains(b, "add chain inet faultline_x in")) << b;
  EXPECT_TRUE(Contains(b, "meta l4proto tcp th dport { 8000 } ip daddr @peers4")) << b;
  EXPECT_TRUE(Contains(b, "add element inet faultline_x peers4 { 10.77.0.20 }")) << b;
  EXPECT_FALSE(Contains(b, "oif lo accept")) << "peers named: loopback may be targeted";

  f.mutable_match()->set_direction(v1::NetworkSelector::INGRESS);
  b = NetworkApplyBatch("faultline_x", f, {}, {});
  EXPECT_FALSE(Contains(b, "add chain inet faultline_x out")) << b;
  EXPECT_TRUE(Contains(b, "th sport { 8000 } ip saddr @peers4")) << b;
}

TEST(NetworkRulesTest, LossUsesNumgenInBasisPoints) {
  v1::NetworkFault f;
  f.mutable_loss()->set_percent(2.5);
  EXPECT_TRUE(
      Contains(NetworkApplyBatch("faultline_x", f, {}, {}), "numgen random mod 10000 < 250"));
}

TEST(NetworkRulesTest, FullLossDropsWithoutADrawNumgenCannotExpress) {
  v1::NetworkFault f;
  f.mutable_loss()->set_percent(100);
  std::string b = NetworkApplyBatch("faultline_x", f, {}, {});
  EXPECT_FALSE(Contains(b, "numgen")) << b;  // "< 10000" is outside numgen's 0-9999 range
  EXPECT_TRUE(Contains(b, "counter name \"faulted\" drop")) << b;
}

TEST(NetworkRulesTest, RejectLetsItsOwnResetsOut) {
  v1::NetworkFault f;
  f.mutable_reject();
  std::string b = NetworkApplyBatch("faultline_x", f, {}, {});
  EXPECT_TRUE(Contains(b, "reject with tcp reset"));
  EXPECT_TRUE(Contains(b, "reject with icmpx type port-unreachable"));
  EXPECT_LT(b.find("out tcp flags & rst == rst accept"), b.find("reject with tcp reset"));
}

TEST(NetworkRulesTest, LatencyMarksAndDefaultsToEgress) {
  v1::NetworkFault f;
  f.mutable_latency()->set_delay_us(1000);
  NetworkRuleOptions o;
  o.queue_mark = 1u << 20;
  std::string b = NetworkApplyBatch("faultline_x", f, o, {});
  EXPECT_EQ(EffectiveDirection(f), v1::NetworkSelector::EGRESS);
  EXPECT_TRUE(Contains(b, "meta mark set meta mark or 0x100000")) << b;
  EXPECT_TRUE(Contains(b, "hook output priority -350")) << b;
  EXPECT_FALSE(Contains(b, " drop")) << b;
}

TEST(NetworkRulesTest, QueuedFaultsLetReinjectedCopiesPassAndCountFailOpen) {
  v1::NetworkFault f;
  f.mutable_latency()->set_delay_us(1000);
  NetworkRuleOptions o;
  o.queue_mark = 1u << 20;
  o.bypass_mark = 1u << 19;
  std::string b = NetworkApplyBatch("faultline_x", f, o, {});
  size_t pass = b.find("add rule inet faultline_x out meta mark & 0x80000 == 0x80000 accept");
  ASSERT_NE(pass, std::string::npos) << b;
  EXPECT_LT(pass, b.find("meta mark set meta mark or 0x100000")) << b;
  EXPECT_TRUE(
      Contains(b, "add chain inet faultline_x outq { type filter hook output priority -250"))
      << b;
  EXPECT_TRUE(Contains(b, "outq meta mark & 0x100000 == 0x100000 counter name \"bypassed\"")) << b;
}

TEST(NetworkRulesTest, CorrelatedLossGoesThroughTheQueueIndependentLossStaysInNft) {
  v1::NetworkFault f;
  f.mutable_loss()->set_percent(5);
  EXPECT_FALSE(QueuedFault(f));
  f.mutable_loss()->set_correlation_percent(50);
  EXPECT_TRUE(QueuedFault(f));
  NetworkRuleOptions o;
  o.queue_mark = 1u << 21;
  std::string b = NetworkApplyBatch("faultline_x", f, o, {});
  EXPECT_TRUE(Contains(b, "meta mark set meta mark or 0x200000")) << b;
  EXPECT_FALSE(Contains(b, "numgen")) << b;
  EXPECT_TRUE(Contains(b, "add chain inet faultline_x in { type filter hook prerouting")) << b;
}

TEST(NetworkRulesTest, ResolvedHostsJoinThePeerSets) {
  v1::NetworkFault f = Blackhole();
  f.mutable_match()->add_hosts("db.test");
  std::string b = PeerSetUpdateBatch("faultline_x", f, {"10.0.0.5", "fd00::5"});
  EXPECT_TRUE(Contains(b, "flush set inet faultline_x peers4"));
  EXPECT_TRUE(Contains(b, "add element inet faultline_x peers4 { 10.0.0.5 }"));
  EXPECT_TRUE(Contains(b, "add element inet faultline_x peers6 { fd00::5 }"));
}

TEST(NetworkRulesTest, CountersParsedFromNftListing) {
  auto c = ParseNftCounters(
      "table inet faultline_x {\n\tcounter matched {\n\t\tpackets 12 bytes 3400\n\t}\n"
      "\tcounter faulted {\n\t\tpackets 3 bytes 180\n\t}\n}\n");
  EXPECT_EQ(c["matched"].packets, 12u);
  EXPECT_EQ(c["matched"].bytes, 3400u);
  EXPECT_EQ(c["faulted"].packets, 3u);
}

TEST(NetworkRulesTest, QueueRuleDeletionsFindOnlyOurComments) {
  const std::string listing =
      "-P OUTPUT ACCEPT\n"
      "-A OUTPUT -m mark --mark 0x100000/0x100000 -m comment --comment faultline_ab -j NFQUEUE "
      "--queue-num 3100 --queue-bypass\n"
      "-A OUTPUT -m comment --comment faultline_abc -j NFQUEUE --queue-num 3101\n"
      "-A OUTPUT -m comment --comment \"someone else\" -j ACCEPT\n";
  auto exact = QueueRuleDeletions(listing, "faultline_ab", true);
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0][3], "-D");
  EXPECT_EQ(QueueRuleDeletions(listing, "faultline_", false).size(), 2u);
  auto add = QueueRuleArgs("-A", true, "faultline_ab", 1u << 20, 3100);
  EXPECT_EQ(std::vector<std::string>(add.begin() + 4, add.end()),
            std::vector<std::string>(exact[0].begin() + 4, exact[0].end()))
      << "what we add is exactly what the sweep deletes";
}

}  // namespace
}  // namespace faultline::agent::netfilter
