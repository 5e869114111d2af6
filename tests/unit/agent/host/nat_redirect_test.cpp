#include "agent/host/nat_redirect.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/host/original_destination.h"

namespace faultline::agent::host {
namespace {

TEST(NatRedirectTest, ExemptionsReturnBeforeAnyRedirect) {
  NatRedirect r;
  r.table = "inet faultline_d1";
  r.priority = -101;
  r.exempt = {"ct label 127", SocketMarkMatch(0x464c)};
  r.redirects = {{"udp dport 53", 5353}, {"tcp dport 53 ", 5353}};
  EXPECT_EQ(NatRedirectBatch(r),
            "add chain inet faultline_d1 output { type nat hook output priority -101; }\n"
            "add rule inet faultline_d1 output ct label 127 return\n"
            "add rule inet faultline_d1 output meta mark 0x464c return\n"
            "add rule inet faultline_d1 output udp dport 53 redirect to :5353\n"
            "add rule inet faultline_d1 output tcp dport 53 redirect to :5353\n");
}

TEST(OriginalDestinationTest, ADirectConnectionWasNotRedirected) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int accepted = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  auto dst = TcpOriginalDestination(accepted, AF_INET);
  EXPECT_EQ(dst.status().code(), StatusCode::kNotFound);
  ::close(accepted);
  ::close(client);
  ::close(listener);
}

}  // namespace
}  // namespace faultline::agent::host
