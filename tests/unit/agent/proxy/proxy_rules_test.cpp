#include "agent/proxy/proxy_rules.h"

#include <gtest/gtest.h>

#include <random>

namespace faultline::agent::proxy {
namespace {

using v1::DependencyFault;
using Toxic = v1::DependencyFault::Toxic;

DependencyFault BaseFault() {
  DependencyFault f;
  f.mutable_match()->add_hosts("dynamodb.us-east-1.sandbox.test");
  f.mutable_match()->add_remote_ports(8000);
  f.add_toxics()->mutable_latency()->set_latency_us(50000);
  return f;
}

DependencyFault::Http AbortAll(uint32_t status, const std::string& body) {
  DependencyFault::Http h;
  auto* a = h.add_aborts();
  a->set_status(status);
  a->set_body(body);
  a->set_percent(100.0);
  return h;
}

std::string Joined(const HttpRequestGate::Output& out) {
  std::string s;
  for (const auto& seg : out.forward) s += seg.bytes;
  return s;
}

TEST(RedirectApplyBatchTest, ExemptsTheProxyMarkAndRedirectsOnlyTheDependency) {
  DependencyFault f = BaseFault();
  f.mutable_match()->add_cidrs("10.77.0.0/24");
  f.mutable_match()->add_exclude_cidrs("10.77.0.5");
  RedirectOptions o{0x464d, 41234, true};
  std::string b = RedirectApplyBatch("faultline_r1_0", f, o, {"10.77.0.20", "fd00::1"});
  EXPECT_NE(b.find("delete table inet faultline_r1_0"), std::string::npos);
  EXPECT_NE(b.find("type nat hook output priority -100"), std::string::npos);
  const size_t mark = b.find("meta mark 0x464d return");
  const size_t redirect = b.find("redirect to :41234");
  ASSERT_NE(mark, std::string::npos);
  ASSERT_NE(redirect, std::string::npos);
  EXPECT_LT(mark, redirect);  // the proxy's own connections never loop back into it
  EXPECT_NE(b.find("add element inet faultline_r1_0 peers4 { 10.77.0.0/24, 10.77.0.20 }"),
            std::string::npos);
  EXPECT_NE(b.find("peers6 { fd00::1 }"), std::string::npos);
  EXPECT_NE(b.find("excl4 { 10.77.0.5 }"), std::string::npos);
  EXPECT_NE(b.find("meta nfproto ipv4 tcp dport { 8000 } ip daddr @peers4"), std::string::npos);
  EXPECT_NE(b.find("meta nfproto ipv6 tcp dport { 8000 } ip6 daddr @peers6"), std::string::npos);
  EXPECT_EQ(RedirectPeerUpdateBatch("faultline_r1_0", f, {"10.77.0.30"}).find("flush set"), 0u);
}

TEST(PlanToxicsTest, ToxicityShareIsWithinBinomialBounds) {
  DependencyFault f = BaseFault();
  f.mutable_toxics(0)->set_toxicity(0.3);
  f.mutable_toxics(0)->set_direction(Toxic::DOWNSTREAM);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int got = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    ToxicPlan p = PlanToxics(f, [&] { return u(rng); });
    EXPECT_TRUE(p.upstream.empty());
    got += p.downstream.size();
  }
  // 0.3 ± 5 standard deviations (sd = sqrt(0.3 * 0.7 / n) = 0.0032).
  EXPECT_NEAR(got / double(n), 0.3, 0.016);
}

TEST(HttpRequestGateTest, AbortsAMatchingRequestWithTheConfiguredStatusAndBody) {
  HttpRequestGate gate(AbortAll(400, "{\"__type\":\"ThrottlingException\"}"), [] { return 0.5; });
  auto out = gate.Feed("GET /kv/orders/1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(out.abort);
  EXPECT_TRUE(out.forward.empty());  // the dependency never sees the request
  EXPECT_EQ(out.response.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
  EXPECT_NE(out.response.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(out.response.find("Connection: close"), std::string::npos);
  EXPECT_NE(out.response.find("\r\n\r\n{\"__type\":\"ThrottlingException\"}"), std::string::npos);
  EXPECT_EQ(gate.counters().requests_aborted, 1u);
}

TEST(HttpRequestGateTest, HoldsAnIncompleteHeaderBlockUntilItEnds) {
  HttpRequestGate gate(AbortAll(503, ""), [] { return 0.5; });
  auto out = gate.Feed("GET /kv/1 HTTP/1.1\r\nHo");
  EXPECT_FALSE(out.abort);
  EXPECT_TRUE(out.forward.empty());
  EXPECT_GT(gate.held(), 0u);
  out = gate.Feed("st: x\r\n\r\n");
  EXPECT_TRUE(out.abort);
}

TEST(HttpRequestGateTest, MatchesMethodAndPathPrefix) {
  DependencyFault::Http h = AbortAll(503, "");
  h.add_methods("POST");
  h.set_path_prefix("/kv/");
  HttpRequestGate gate(h, [] { return 0.0; });
  std::string get = "GET /kv/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  auto out = gate.Feed(get);
  EXPECT_FALSE(out.abort);
  EXPECT_EQ(Joined(out), get);
  std::string other = "POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
  out = gate.Feed(other);
  EXPECT_FALSE(out.abort);
  EXPECT_EQ(Joined(out), other);
  out = gate.Feed("POST /kv/2 HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(out.abort);
  EXPECT_EQ(gate.counters().requests_seen, 3u);
  EXPECT_EQ(gate.counters().requests_matched, 1u);
}

TEST(HttpRequestGateTest, FramesPipelinedRequestsWithBodiesAndDelaysEachOne) {
  DependencyFault::Http h;
  h.set_delay_ms(200);
  h.set_delay_percent(100);
  HttpRequestGate gate(h, [] { return 0.0; });
  std::string a = "PUT /kv/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  std::string b = "GET /kv/b HTTP/1.1\r\n\r\n";
  // Split in the middle of the first body and the second header block.
  std::string all = a + b;
  auto out1 = gate.Feed(all.substr(0, 40));
  auto out2 = gate.Feed(all.substr(40));
  EXPECT_EQ(Joined(out1) + Joined(out2), all);
  for (const auto& seg : out1.forward) EXPECT_EQ(seg.delay, std::chrono::milliseconds(200));
  for (const auto& seg : out2.forward) EXPECT_EQ(seg.delay, std::chrono::milliseconds(200));
  EXPECT_EQ(gate.counters().requests_seen, 2u);
  EXPECT_EQ(gate.counters().requests_delayed, 2u);
}

TEST(HttpRequestGateTest, StopsInspectingAChunkedRequestAndPassesEverythingOn) {
  HttpRequestGate gate(AbortAll(503, ""), [] { return 0.0; });
  std::string chunked =
      "POST /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
      "GET /kv/b HTTP/1.1\r\n\r\n";
  auto out = gate.Feed(chunked);
  EXPECT_FALSE(out.abort);
  EXPECT_EQ(Joined(out), chunked);
  EXPECT_EQ(gate.counters().uninspected, 1u);
}

TEST(HttpRequestGateTest, AbortShareIsWithinBinomialBounds) {
  DependencyFault::Http h;
  auto* a = h.add_aborts();
  a->set_status(400);
  a->set_percent(15);
  auto* b = h.add_aborts();
  b->set_status(503);
  b->set_percent(15);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int s400 = 0, s503 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    HttpRequestGate gate(h, [&] { return u(rng); });
    auto out = gate.Feed("GET /kv/1 HTTP/1.1\r\n\r\n");
    if (out.abort && out.response.rfind("HTTP/1.1 400", 0) == 0) ++s400;
    if (out.abort && out.response.rfind("HTTP/1.1 503", 0) == 0) ++s503;
  }
  // 0.15 ± 5 sd (sd = sqrt(0.15 * 0.85 / n) = 0.0025).
  EXPECT_NEAR(s400 / double(n), 0.15, 0.013);
  EXPECT_NEAR(s503 / double(n), 0.15, 0.013);
}

}  // namespace
}  // namespace faultline::agent::proxy
