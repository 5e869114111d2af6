// The container layout of `sandbox up --containers`: names, namespaces, addresses and labels the
// docs, the container flagship and the agents' selectors rely on, and dnsmasq's records for the
// containers' endpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "controller/sandbox/sandbox.h"
#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox {
namespace {

std::string Label(const SandboxContainer& c, const std::string& key) {
  for (const auto& [k, v] : c.labels) {
    if (k == key) return v;
  }
  return "";
}

TEST(SandboxContainersTest, OneReplicaIsOrdersAndOneKvPerRegionOnTheirHosts) {
  auto cs = SandboxContainers(1);
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(cs[0].name, "fl-kv-east-1");
  EXPECT_EQ(cs[0].host, "fl-db-east");
  EXPECT_EQ(cs[0].address, "10.77.0.111");
  EXPECT_EQ(Label(cs[0], "region"), "us-east-1");
  EXPECT_EQ(cs[1].name, "fl-kv-west-1");
  EXPECT_EQ(cs[1].host, "fl-db-west");
  EXPECT_EQ(cs[2].name, "fl-orders-1");
  EXPECT_EQ(cs[2].host, "fl-app");
  EXPECT_EQ(cs[2].netns, "fl-c-orders-1");
  EXPECT_EQ(cs[2].address, "10.77.0.101");  // experiments/dynamodb-dns-failover-containers.yaml
  EXPECT_EQ(cs[2].port, kOrdersPort);
  EXPECT_EQ(Label(cs[2], "app"), "orders");
  EXPECT_EQ(Label(cs[2], "tier"), "web");
  EXPECT_EQ(Label(cs[0], "app"), "kv");
  EXPECT_EQ(Label(cs[0], "tier"), "db");
}

TEST(SandboxContainersTest, EveryReplicaCountGivesDistinctNamesAddressesAndShortLinkNames) {
  std::set<std::string> host_addresses;
  for (const auto& h : SandboxHosts()) host_addresses.insert(h.address);
  for (int replicas = 1; replicas <= kMaxContainerReplicas; ++replicas) {
    auto cs = SandboxContainers(replicas);
    ASSERT_EQ(cs.size(), static_cast<size_t>(3 * replicas));
    std::set<std::string> names, netns, addresses;
    for (const auto& c : cs) {
      names.insert(c.name);
      netns.insert(c.netns);
      addresses.insert(c.address);
      EXPECT_EQ(c.address.rfind("10.77.0.", 0), 0u) << c.address;
      EXPECT_EQ(host_addresses.count(c.address), 0u) << c.address << " is a host's address";
      EXPECT_EQ(c.netns.rfind("fl-c-", 0), 0u);
      // The bridge port "v-c-<netns minus fl-c->" must fit IFNAMSIZ (15 characters).
      EXPECT_LE(c.netns.size() - 5 + 4, 15u) << c.netns;
      EXPECT_TRUE(std::is_sorted(c.labels.begin(), c.labels.end()));
    }
    EXPECT_EQ(names.size(), cs.size());
    EXPECT_EQ(netns.size(), cs.size());
    EXPECT_EQ(addresses.size(), cs.size());
  }
}

TEST(SandboxContainersTest, OutOfRangeReplicaCountsGiveNone) {
  EXPECT_TRUE(SandboxContainers(0).empty());
  EXPECT_TRUE(SandboxContainers(kMaxContainerReplicas + 1).empty());
}

TEST(SandboxContainersTest, DnsmasqServesTheContainerEndpointsOnlyWithContainers) {
  auto has = [](const std::vector<std::string>& argv, const std::string& arg) {
    return std::find(argv.begin(), argv.end(), arg) != argv.end();
  };
  auto with = internal::DnsmasqArgv("dnsmasq", 2);
  EXPECT_TRUE(has(with, "--host-record=dynamodb.us-east-1.containers.sandbox.test,10.77.0.111"));
  EXPECT_TRUE(has(with, "--host-record=dynamodb.us-west-2.containers.sandbox.test,10.77.0.121"));
  EXPECT_FALSE(has(with, "--host-record=dynamodb.us-east-1.containers.sandbox.test,10.77.0.112"));
  EXPECT_TRUE(has(with, "--host-record=dynamodb.us-east-1.sandbox.test,10.77.0.20"));
  auto without = internal::DnsmasqArgv("dnsmasq", 0);
  for (const auto& a : without) EXPECT_EQ(a.find(".containers."), std::string::npos) << a;
  EXPECT_TRUE(has(without, "--host-record=dynamodb.us-east-1.sandbox.test,10.77.0.20"));
}

}  // namespace
}  // namespace faultline::sandbox
