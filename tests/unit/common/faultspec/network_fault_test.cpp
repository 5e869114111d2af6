#include "common/faultspec/network/network_fault.h"

#include <gtest/gtest.h>

#include <string>

#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {
namespace {

v1::NetworkFault Blackhole() {
  v1::NetworkFault f;
  f.mutable_blackhole();
  return f;
}

Status Check(const v1::NetworkFault& f, NetworkValidationOptions options = {}) {
  FieldProblems problems;
  ValidateNetworkFault(f, "network", options, &problems);
  return problems.ToStatus();
}

TEST(ValidateNetworkFaultTest, NamesTheField) {
  v1::NetworkFault f;
  EXPECT_FALSE(Check(f).ok());
  f.mutable_partition();
  Status s = Check(f);
  EXPECT_NE(s.message().find("peers"), std::string::npos) << s.message();
  f.mutable_match()->add_cidrs("10.0.0.0/33");
  s = Check(f);
  EXPECT_NE(s.message().find("network.match.cidrs[0]"), std::string::npos) << s.message();
  v1::NetworkFault l;
  l.mutable_latency()->set_delay_us(100);
  l.mutable_latency()->set_jitter_us(200);
  EXPECT_NE(Check(l).message().find("network.latency.jitter_us"), std::string::npos);
  v1::NetworkFault icmp_ports = Blackhole();
  icmp_ports.mutable_match()->set_protocol(v1::NetworkSelector::ICMP);
  icmp_ports.mutable_match()->add_remote_ports(80);
  EXPECT_FALSE(Check(icmp_ports).ok());
  EXPECT_TRUE(Check(Blackhole()).ok());
  v1::NetworkFault loss;
  loss.mutable_loss()->set_percent(5);
  loss.mutable_loss()->set_correlation_percent(101);
  EXPECT_NE(Check(loss).message().find("network.loss.correlation_percent"), std::string::npos);
}

TEST(ValidateNetworkFaultTest, APartitionFromOtherTargetsMayGetItsPeersLater) {
  v1::NetworkFault f;
  f.mutable_partition();
  EXPECT_FALSE(Check(f).ok()) << "the agent needs the peers";
  EXPECT_TRUE(Check(f, {.partition_peers_added_later = true}).ok());
  f.mutable_match()->set_direction(v1::NetworkSelector::EGRESS);
  EXPECT_NE(Check(f, {.partition_peers_added_later = true}).message().find("both directions"),
            std::string::npos);
}

// The bandwidth burst had no check at the agent (only the parser's).
TEST(ValidateNetworkFaultTest, BandwidthRateAndBurstHaveBounds) {
  v1::NetworkFault f;
  f.mutable_bandwidth()->set_rate_bytes_per_second(999);
  EXPECT_NE(Check(f).message().find("network.bandwidth.rate_bytes_per_second"), std::string::npos);
  f.mutable_bandwidth()->set_rate_bytes_per_second(125000);
  EXPECT_TRUE(Check(f).ok());
  f.mutable_bandwidth()->set_burst_bytes(100);
  EXPECT_NE(Check(f).message().find("network.bandwidth.burst_bytes"), std::string::npos);
  f.mutable_bandwidth()->set_burst_bytes(32 * 1024);
  EXPECT_TRUE(Check(f).ok());
}

TEST(ValidateNetworkFaultTest, BoundsEveryRepeatedFieldOfTheSelector) {
  struct Case {
    void (*fill)(v1::NetworkSelector*);
    const char* field;
  };
  const Case cases[] = {
      {[](v1::NetworkSelector* m) {
         for (int i = 0; i <= kMaxCidrs; ++i) m->add_cidrs("10.0.0.1");
       },
       "network.match.cidrs: at most 256"},
      {[](v1::NetworkSelector* m) {
         for (int i = 0; i <= kMaxCidrs; ++i) m->add_exclude_cidrs("10.0.0.1");
       },
       "network.match.exclude_cidrs: at most 256"},
      {[](v1::NetworkSelector* m) {
         for (int i = 0; i <= kMaxHosts; ++i) m->add_hosts("db.test");
       },
       "network.match.hosts: at most 16"},
      {[](v1::NetworkSelector* m) {
         for (int i = 0; i <= kMaxPorts; ++i) m->add_remote_ports(80);
       },
       "network.match.remote_ports: at most 64"},
      {[](v1::NetworkSelector* m) {
         for (int i = 0; i <= kMaxPorts; ++i) m->add_local_ports(80);
       },
       "network.match.local_ports: at most 64"},
  };
  for (const Case& c : cases) {
    v1::NetworkFault f = Blackhole();
    c.fill(f.mutable_match());
    EXPECT_NE(Check(f).message().find(c.field), std::string::npos) << Check(f).message();
  }
}

}  // namespace
}  // namespace faultline::faultspec
