#include "common/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "common/metrics_server.h"

namespace faultline::metrics {
namespace {

TEST(MetricsRegistryTest, RendersHelpTypeAndSeriesExactly) {
  Registry r;
  ASSERT_TRUE(r.Declare("faultline_agent_faults_applied_total", MetricType::kCounter,
                        "Faults applied, by kind.")
                  .ok());
  ASSERT_TRUE(
      r.Declare("faultline_agent_active_faults", MetricType::kGauge, "Active faults.").ok());
  ASSERT_TRUE(r.Increment("faultline_agent_faults_applied_total", {{"kind", "dns"}}).ok());
  ASSERT_TRUE(r.Increment("faultline_agent_faults_applied_total", {{"kind", "dns"}}, 2).ok());
  ASSERT_TRUE(r.Increment("faultline_agent_faults_applied_total", {{"kind", "network"}}).ok());
  ASSERT_TRUE(r.Set("faultline_agent_active_faults", {}, 1).ok());
  EXPECT_EQ(r.Render(),
            "# HELP faultline_agent_active_faults Active faults.\n"
            "# TYPE faultline_agent_active_faults gauge\n"
            "faultline_agent_active_faults 1\n"
            "# HELP faultline_agent_faults_applied_total Faults applied, by kind.\n"
            "# TYPE faultline_agent_faults_applied_total counter\n"
            "faultline_agent_faults_applied_total{kind=\"dns\"} 3\n"
            "faultline_agent_faults_applied_total{kind=\"network\"} 1\n");
}

TEST(MetricsRegistryTest, HistogramRendersCumulativeBucketsSumAndCount) {
  Registry r;
  ASSERT_TRUE(r.DeclareHistogram("req_seconds", "Request latency.", {0.1, 1}).ok());
  EXPECT_TRUE(r.DeclareHistogram("req_seconds", "Request latency.", {0.1, 1}).ok());  // idempotent
  EXPECT_EQ(r.DeclareHistogram("req_seconds", "Request latency.", {0.5}).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(r.DeclareHistogram("bad", "b", {1, 1}).code(), StatusCode::kInvalidArgument);
  for (double v : {0.05, 0.1, 0.5, 3.0})
    ASSERT_TRUE(r.Observe("req_seconds", {{"outcome", "ok"}}, v).ok());
  EXPECT_EQ(r.Observe("req_seconds", {{"le", "1"}}, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Observe("req_seconds", {}, std::nan("")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Render(),
            "# HELP req_seconds Request latency.\n"
            "# TYPE req_seconds histogram\n"
            "req_seconds_bucket{outcome=\"ok\",le=\"0.1\"} 2\n"
            "req_seconds_bucket{outcome=\"ok\",le=\"1\"} 3\n"
            "req_seconds_bucket{outcome=\"ok\",le=\"+Inf\"} 4\n"
            "req_seconds_sum{outcome=\"ok\"} 3.65\n"
            "req_seconds_count{outcome=\"ok\"} 4\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  Registry r;
  ASSERT_TRUE(r.Declare("m", MetricType::kGauge, "line one\nback\\slash").ok());
  ASSERT_TRUE(r.Set("m", {{"a", "quote\" nl\n bs\\"}, {"b", "ü"}}, 0.5).ok());
  EXPECT_EQ(r.Render(),
            "# HELP m line one\\nback\\\\slash\n"
            "# TYPE m gauge\n"
            "m{a=\"quote\\\" nl\\n bs\\\\\",b=\"ü\"} 0.5\n");
}

TEST(MetricsRegistryTest, FormatsSpecialValues) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(12345678901.0), "12345678901");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsRegistryTest, RejectsBadNamesLabelsAndMisuse) {
  Registry r;
  EXPECT_EQ(r.Declare("9bad", MetricType::kCounter, "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Declare("has-dash", MetricType::kCounter, "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Declare("ok", MetricType::kCounter, "").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(r.Declare("c_total", MetricType::kCounter, "c").ok());
  EXPECT_TRUE(r.Declare("c_total", MetricType::kCounter, "c").ok());  // idempotent
  EXPECT_EQ(r.Declare("c_total", MetricType::kGauge, "c").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(r.Increment("c_total", {}, -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Increment("c_total", {}, std::nan("")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Set("c_total", {}, 1).code(), StatusCode::kInvalidArgument);  // not a gauge
  EXPECT_EQ(r.Increment("undeclared", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Increment("c_total", {{"__reserved", "x"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Increment("c_total", {{"bad-name", "x"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Increment("c_total", {{"a", "1"}, {"a", "2"}}).code(), StatusCode::kInvalidArgument);
  double v = -1;
  EXPECT_FALSE(r.Get("c_total", {}, &v));  // nothing was created by the refused calls
  EXPECT_EQ(v, -1);
}

TEST(MetricsRegistryTest, CollectorReplacesSeriesOnEveryRender) {
  Registry r;
  ASSERT_TRUE(r.Declare("evidence", MetricType::kGauge, "e").ok());
  int round = 0;
  r.AddCollector([&round](Registry& reg) {
    ++round;
    std::vector<Sample> samples;
    if (round == 1) samples.push_back({{{"fault_id", "f1"}}, 5});
    ASSERT_TRUE(reg.Replace("evidence", samples).ok());
  });
  EXPECT_NE(r.Render().find("evidence{fault_id=\"f1\"} 5\n"), std::string::npos);
  // The fault is gone: its series disappears, HELP/TYPE stay.
  EXPECT_EQ(r.Render(), "# HELP evidence e\n# TYPE evidence gauge\n");
}

TEST(MetricsServerTest, ServesMetricsOverARealSocketAndNothingElse) {
  Registry r;
  ASSERT_TRUE(r.Declare("up_total", MetricType::kCounter, "u").ok());
  ASSERT_TRUE(r.Increment("up_total", {}).ok());
  auto server = MetricsServer::Start("127.0.0.1:0", r);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));

  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kTextContentType);
  EXPECT_EQ(res->body, "# HELP up_total u\n# TYPE up_total counter\nup_total 1\n");

  ASSERT_TRUE(r.Increment("up_total", {}).ok());
  res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("up_total 2\n"), std::string::npos);

  res = client.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client.Get("/metrics/../etc/passwd");
  ASSERT_TRUE(res);
  EXPECT_NE(res->status, 200);
  res = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);

  (*server)->Stop();
  (*server)->Stop();  // idempotent
  EXPECT_FALSE(client.Get("/metrics"));
}

// A client that connects and never finishes its request (here: a POST that announces no body)
// must not keep the endpoint from answering the next scrape for long.
TEST(MetricsServerTest, SilentClientDoesNotBlockScrapes) {
  Registry r;
  ASSERT_TRUE(r.Declare("up_total", MetricType::kCounter, "u").ok());
  auto server = MetricsServer::Start("127.0.0.1:0", r);
  ASSERT_TRUE(server.ok());
  std::vector<int> silent;
  for (int i = 0; i < 4; ++i) {  // more than the server has workers
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>((*server)->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const char partial[] = "POST /metrics HTTP/1.1\r\nHost: x\r\n";
    ASSERT_GT(::write(fd, partial, sizeof(partial) - 1), 0);
    silent.push_back(fd);
  }
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(30, 0);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  for (int fd : silent) ::close(fd);
}

TEST(MetricsServerTest, RefusesMalformedOrBusyAddresses) {
  Registry r;
  EXPECT_EQ(MetricsServer::Start("127.0.0.1", r).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Start("127.0.0.1:99999", r).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Start(":9464", r).status().code(), StatusCode::kInvalidArgument);
  auto first = MetricsServer::Start("127.0.0.1:0", r);
  ASSERT_TRUE(first.ok());
  auto second = MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()), r);
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST(MetricsServerTest, ServesOnIpv6Loopback) {
  Registry r;
  auto server = MetricsServer::Start("[::1]:0", r);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << server.status().ToString();
  EXPECT_EQ((*server)->address(), "[::1]:" + std::to_string((*server)->port()));
  httplib::Client client("::1", (*server)->port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace faultline::metrics
