// The Prometheus API client's pure parts (answers as Prometheus 2.42 sends them, the comparison,
// the verdict on a result, the evaluation-time mapping) and its HTTP side against a local server
// that answers like /api/v1/query. The client against a real Prometheus is exercised by
// tests/integration/prometheus_probe_test.sh.
#include "controller/probes/prometheus_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <limits>
#include <thread>

#include "controller/probes/promql_probe.h"

namespace faultline::probes {
namespace {

using experiment::CompareOp;
using namespace std::chrono_literals;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(PromCompareTest, EveryOperatorOnATable) {
  struct Row {
    double lhs;
    CompareOp op;
    double rhs;
    bool want;
  };
  for (const Row& r : std::vector<Row>{
           {1, CompareOp::kLt, 2, true},
           {2, CompareOp::kLt, 2, false},
           {2, CompareOp::kLe, 2, true},
           {3, CompareOp::kLe, 2, false},
           {3, CompareOp::kGt, 2, true},
           {2, CompareOp::kGt, 2, false},
           {2, CompareOp::kGe, 2, true},
           {1, CompareOp::kGe, 2, false},
           {2, CompareOp::kEq, 2, true},
           {2.5, CompareOp::kEq, 2, false},
           {2.5, CompareOp::kNe, 2, true},
           {2, CompareOp::kNe, 2, false},
           {kInf, CompareOp::kGt, 1e308, true},
           {kNaN, CompareOp::kLt, 1, false},
           {kNaN, CompareOp::kGe, 1, false},
           {kNaN, CompareOp::kEq, kNaN, false},
           {kNaN, CompareOp::kNe, 1, true},
       }) {
    EXPECT_EQ(Compare(r.lhs, r.op, r.rhs), r.want)
        << r.lhs << " " << experiment::CompareOpName(r.op) << " " << r.rhs;
  }
}

TEST(PromQueryParseTest, VectorScalarAndErrors) {
  auto v = ParsePromQueryResponse(
      R"({"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"orders"},"value":[1765100000.123,"1"]},
        {"metric":{"job":"kv"},"value":[1765100000.123,"NaN"]}]}})");
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->result_type, "vector");
  ASSERT_EQ(v->series.size(), 2u);
  EXPECT_EQ(v->series[0].labels, R"(up{job="orders"})");
  EXPECT_EQ(v->series[0].value, 1);
  EXPECT_TRUE(std::isnan(v->series[1].value));
  ASSERT_TRUE(v->eval_unix_s.has_value());
  EXPECT_DOUBLE_EQ(*v->eval_unix_s, 1765100000.123);

  auto s = ParsePromQueryResponse(
      R"({"status":"success","data":{"resultType":"scalar","result":[1765100001.5,"+Inf"]}})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->series.size(), 1u);
  EXPECT_EQ(s->series[0].value, kInf);

  auto empty =
      ParsePromQueryResponse(R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->series.empty());
  EXPECT_FALSE(empty->eval_unix_s.has_value());

  auto error = ParsePromQueryResponse(
      R"({"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"})");
  EXPECT_EQ(error.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(error.status().message(), "prometheus: bad_data: 1:5: parse error: unexpected");

  auto matrix =
      ParsePromQueryResponse(R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
  EXPECT_EQ(matrix.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(matrix.status().message().find("rate()"), std::string::npos);

  for (const char* bad :
       {"", "<html>", "[]", R"({"status":"success"})",
        R"({"status":"success","data":{"resultType":"scalar","result":[1]}})",
        R"({"status":"success","data":{"resultType":"vector","result":[{}]}})",
        R"({"status":"success","data":{"resultType":"scalar","result":[1,"x"]}})"}) {
    EXPECT_EQ(ParsePromQueryResponse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PromAlertsParseTest, NamesAndStates) {
  auto a = ParsePromAlertsResponse(R"({"status":"success","data":{"alerts":[
      {"labels":{"alertname":"OrdersErrors","severity":"page"},"state":"firing","value":"1e+00"},
      {"labels":{"alertname":"Slow"},"state":"pending"}]}})");
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].name, "OrdersErrors");
  EXPECT_EQ((*a)[0].state, "firing");
  EXPECT_EQ((*a)[1].state, "pending");
  EXPECT_FALSE(ParsePromAlertsResponse(R"({"status":"success","data":{}})").ok());
}

TEST(PromJudgeTest, EverySeriesMustHoldAndNoDataFails) {
  PromQueryResult r;
  r.result_type = "vector";
  PromVerdict none = JudgePromResult(r, CompareOp::kLt, 1);
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.detail, "no data: the query returned no series");

  r.series = {{R"({job="a"})", 0.1}, {R"({job="b"})", 0.9}};
  PromVerdict both = JudgePromResult(r, CompareOp::kLt, 1);
  EXPECT_TRUE(both.ok) << both.detail;
  EXPECT_EQ(both.detail, "0.1 < 1 (all 2 series)");
  PromVerdict one_fails = JudgePromResult(r, CompareOp::kLt, 0.5);
  EXPECT_FALSE(one_fails.ok);
  EXPECT_EQ(one_fails.detail, R"({job="b"} 0.9, not < 0.5 (2 series))");

  r.series = {{"", kNaN}};
  PromVerdict nan = JudgePromResult(r, CompareOp::kLe, 0.01);
  EXPECT_FALSE(nan.ok);
  EXPECT_EQ(nan.detail, "NaN, not <= 0.01");
}

TEST(PromEvalTimeTest, MappedIntoTheRequestsBracket) {
  const MonoTime sent = 100s, answered = sent + 40ms;
  const int64_t sent_wall = 1'765'100'000'000;
  // Same clocks: the stamp 15 ms after the send maps to 15 ms after the send.
  EXPECT_EQ(MapEvalTime(1'765'100'000.015, sent, sent_wall, answered), sent + 15ms);
  // A server clock 3 s ahead or behind: clamped to the bracket's ends, never outside it.
  EXPECT_EQ(MapEvalTime(1'765'100'003.0, sent, sent_wall, answered), answered);
  EXPECT_EQ(MapEvalTime(1'765'099'997.0, sent, sent_wall, answered), sent);
  EXPECT_EQ(MapEvalTime(kNaN, sent, sent_wall, answered), sent);
  EXPECT_EQ(MapEvalTime(1e300, sent, sent_wall, answered), answered);
}

// A stand-in for /api/v1/query: answers `body` with `status`, and records the query it got.
class FakePrometheus {
 public:
  FakePrometheus(int status, std::string body) : status_(status), body_(std::move(body)) {
    server_.Get("/api/v1/query", [this](const httplib::Request& req, httplib::Response& res) {
      query_ = req.get_param_value("query");
      res.status = status_;
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakePrometheus() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string query() const { return query_; }

 private:
  int status_;
  std::string body_;
  std::string query_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

class PromQlProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InitProbes(); }
  static experiment::Probe Spec(const std::string& url, CompareOp op, double value) {
    experiment::Probe p;
    p.kind = experiment::Probe::Kind::kPrometheus;
    p.prometheus.url = url;
    p.prometheus.query = R"(sum(rate(orders_requests_total{outcome="error"}[5s])) or vector(0))";
    p.prometheus.op = op;
    p.prometheus.value = value;
    p.timeout = 2s;
    return p;
  }
};

TEST_F(PromQlProbeTest, SampleComparesAndCarriesTheEvaluationInstant) {
  // The stamp is "now" on this machine's wall clock, as a local Prometheus would send it.
  const double now_s = static_cast<double>(SystemClock::Instance().WallUnixMs()) / 1000.0;
  FakePrometheus server(200, R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{},"value":[)" + std::to_string(now_s) +
                                 R"(,"0.25"]}]}})");
  const MonoTime before = SystemClock::Instance().Now();
  ProbeOutcome pass =
      PromQlProbe(Spec(server.Url(), CompareOp::kLt, 0.5), SystemClock::Instance()).TakeSample();
  const MonoTime after = SystemClock::Instance().Now();
  EXPECT_TRUE(pass.ok) << pass.detail;
  EXPECT_EQ(pass.detail, "0.25 < 0.5");
  EXPECT_EQ(server.query(),
            R"(sum(rate(orders_requests_total{outcome="error"}[5s])) or vector(0))");
  ASSERT_TRUE(pass.observed_at.has_value());
  EXPECT_GE(*pass.observed_at, before);
  EXPECT_LE(*pass.observed_at, after);
  // Negative control: the same answer against a tighter bound fails.
  ProbeOutcome fail =
      PromQlProbe(Spec(server.Url(), CompareOp::kLt, 0.2), SystemClock::Instance()).TakeSample();
  EXPECT_FALSE(fail.ok);
  EXPECT_EQ(fail.detail, "0.25, not < 0.2");
}

TEST_F(PromQlProbeTest, PrometheusErrorsAndAnUnreachableServerFailWithTheReason) {
  FakePrometheus server(400, R"({"status":"error","errorType":"bad_data","error":"parse error"})");
  ProbeOutcome bad =
      PromQlProbe(Spec(server.Url(), CompareOp::kLt, 1), SystemClock::Instance()).TakeSample();
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.detail, "prometheus: bad_data: parse error");
  ProbeOutcome down =
      PromQlProbe(Spec("http://127.0.0.1:1", CompareOp::kLt, 1), SystemClock::Instance())
          .TakeSample();
  EXPECT_FALSE(down.ok);
  EXPECT_NE(down.detail.find("prometheus: "), std::string::npos) << down.detail;
}

}  // namespace
}  // namespace faultline::probes
