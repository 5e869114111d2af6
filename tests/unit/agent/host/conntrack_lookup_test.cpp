#include "agent/host/conntrack_lookup.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

namespace faultline::agent::host {
namespace {

SocketAddress V4(const char* ip, uint16_t port) {
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  inet_pton(AF_INET, ip, &v4->sin_addr);
  a.length = sizeof(sockaddr_in);
  return a;
}

SocketAddress V6(const char* ip, uint16_t port) {
  SocketAddress a;
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &v6->sin6_addr);
  a.length = sizeof(sockaddr_in6);
  return a;
}

// The redirect case itself needs nft and namespaces: tests/integration/dns_matrix_test.sh.
TEST(ConntrackLookupTest, UnknownFlowsHaveNoOriginalDestination) {
  if (geteuid() != 0) GTEST_SKIP() << "ctnetlink needs CAP_NET_ADMIN";
  auto lookup = ConntrackLookup::Open();
  ASSERT_TRUE(lookup.ok()) << lookup.status().ToString();
  // More flows than one netlink batch holds, both families.
  std::vector<ConntrackLookup::Flow> flows;
  for (uint16_t i = 0; i < 40; ++i) {
    flows.push_back({V4("127.0.0.1", 1000 + i), V4("127.0.0.1", 9)});
    flows.push_back({V6("::1", 1000 + i), V6("::1", 9)});
  }
  std::vector<SocketAddress> out(flows.size(), V4("10.0.0.1", 53));
  ASSERT_TRUE((*lookup)->OriginalDestinations(flows, out).ok());
  for (const auto& o : out) EXPECT_EQ(o.length, 0u);
}

}  // namespace
}  // namespace faultline::agent::host
