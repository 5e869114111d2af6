// Repeat and compare: the distribution's definitions, the baseline regression rule (with its
// negative controls), the repeat exit code, and the trend renderers.
#include "controller/report/repeat_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "controller/report/trend_report.h"

namespace faultline::report {
namespace {

// A run whose one objective recovered at `ttr` ± `u` (unset ttr: not recovered).
ReportModel RunWith(const std::string& id, std::optional<double> ttr, double u = 0.25,
                    const std::string& verdict = "PASS",
                    const std::string& objective = "failover") {
  ReportModel m;
  m.experiment = "exp";
  m.run_id = id;
  m.verdict = verdict;
  m.started_at = "2026-12-07T10:00:00.000Z";
  ObjectiveRow o;
  o.name = objective;
  o.verdict = ttr ? "PASS" : "FAIL";
  o.target_s = 10;
  o.time_to_detect_s = 0.5;
  o.time_to_recover_s = ttr;
  o.uncertainty_s = u;
  o.samples = 40;
  m.objectives.push_back(o);
  return m;
}

Tolerance Tol(const std::string& text) {
  auto t = ParseTolerance(text);
  EXPECT_TRUE(t.ok()) << text;
  return t.ok() ? *t : Tolerance{};
}

TEST(DistributionTest, OddCountMedianIsTheMiddleValueAndP95TheNearestRank) {
  auto d = Distribute({3.0, 1.0, 2.0});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->count, 3);
  EXPECT_DOUBLE_EQ(d->min, 1);
  EXPECT_DOUBLE_EQ(d->median, 2);
  EXPECT_DOUBLE_EQ(d->p95, 3);  // ceil(0.95 * 3) = 3rd
  EXPECT_DOUBLE_EQ(d->max, 3);
}

TEST(DistributionTest, EvenCountMedianIsTheMeanOfTheMiddleTwo) {
  auto d = Distribute({4.0, 1.0, 3.0, 2.0});
  ASSERT_TRUE(d);
  EXPECT_DOUBLE_EQ(d->median, 2.5);
  EXPECT_DOUBLE_EQ(d->p95, 4);
}

TEST(DistributionTest, P95OfTwentyValuesIsTheNineteenth) {
  std::vector<double> v;
  for (int i = 1; i <= 20; ++i) v.push_back(i);
  auto d = Distribute(v);
  ASSERT_TRUE(d);
  EXPECT_DOUBLE_EQ(d->p95, 19);
  EXPECT_DOUBLE_EQ(d->median, 10.5);
}

TEST(DistributionTest, OneValueAndNone) {
  auto d = Distribute({7.0});
  ASSERT_TRUE(d);
  EXPECT_DOUBLE_EQ(d->median, 7);
  EXPECT_DOUBLE_EQ(d->p95, 7);
  EXPECT_FALSE(Distribute({}));
}

TEST(ToleranceTest, PercentDurationAndRejects) {
  EXPECT_DOUBLE_EQ(Tol("20%").fraction, 0.2);
  EXPECT_DOUBLE_EQ(Tol("500ms").seconds, 0.5);
  EXPECT_DOUBLE_EQ(Tol("0").seconds, 0);
  for (const char* bad : {"", "abc", "-5%", "%", "20 %", "x%", "-1s"}) {
    EXPECT_FALSE(ParseTolerance(bad).ok()) << bad;
  }
}

TEST(RecoveryBracketTest, IsTheReportsOwnAsymmetricBracketWhenItHasOne) {
  ReportModel run = RunWith("a", 0.7, 0.25);
  run.objectives[0].recover_bracket = TimeBracket{0.45, 0.71};
  auto b = RecoveryBracket(run.objectives[0]);
  ASSERT_TRUE(b);
  EXPECT_DOUBLE_EQ(b->lo, 0.45);  // not 0.7 - 0.25
  EXPECT_DOUBLE_EQ(b->hi, 0.71);  // not 0.7 + 0.25
}

// Reports stored before brackets existed.
TEST(RecoveryBracketTest, IsTheUncertaintyAroundTheValueClippedAtZero) {
  auto b = RecoveryBracket(RunWith("a", 0.1, 0.25).objectives[0]);
  ASSERT_TRUE(b);
  EXPECT_DOUBLE_EQ(b->lo, 0);
  EXPECT_DOUBLE_EQ(b->hi, 0.35);
  EXPECT_FALSE(RecoveryBracket(RunWith("a", std::nullopt).objectives[0]));
}

struct CompareCase {
  const char* name;
  double baseline_ttr;
  std::vector<std::optional<double>> runs;
  const char* tolerance;
  bool regressed;
};

TEST(BaselineTest, RegressionRuleTable) {
  const std::vector<CompareCase> cases = {
      // Negative controls: the same recovery, and overlapping brackets, never regress.
      {"equal runs pass", 2.0, {2.0, 2.0, 2.0}, "0s", false},
      {"overlapping brackets pass", 2.0, {2.4, 2.4, 2.4}, "0s", false},  // lo 2.15 <= hi 2.25
      {"faster runs pass", 2.0, {1.0, 1.1, 0.9}, "0s", false},
      // A clearly slower run fails.
      {"clearly slower fails", 2.0, {6.0, 6.2, 5.9}, "0s", true},
      {"slower within 500ms tolerance passes", 2.0, {2.7, 2.7, 2.7}, "500ms", false},
      {"slower beyond 500ms tolerance fails", 2.0, {3.1, 3.1, 3.1}, "500ms", true},
      {"slower within 20% passes", 10.0, {12.0, 12.0, 12.0}, "20%", false},  // 11.75 <= 12.3
      {"slower beyond 20% fails", 10.0, {13.0, 13.0, 13.0}, "20%", true},    // 12.75 > 12.3
      // The median decides: one slow outlier among three does not regress; two do.
      {"one outlier passes", 2.0, {2.0, 9.0, 2.0}, "0s", false},
      {"two slow runs fail", 2.0, {9.0, 2.0, 9.0}, "0s", true},
      // Not recovered counts as +infinity.
      {"most runs unrecovered fail", 2.0, {std::nullopt, std::nullopt, 2.0}, "0s", true},
      {"one unrecovered of three passes", 2.0, {std::nullopt, 2.0, 2.0}, "0s", false},
      {"single run equal passes", 2.0, {2.0}, "0s", false},
      {"single run slower fails", 2.0, {4.0}, "0s", true},
  };
  for (const auto& c : cases) {
    std::vector<ReportModel> runs;
    for (size_t i = 0; i < c.runs.size(); ++i)
      runs.push_back(RunWith("r" + std::to_string(i), c.runs[i]));
    auto cmp = CompareWithBaseline(RunWith("base", c.baseline_ttr), runs, Tol(c.tolerance));
    EXPECT_EQ(cmp.regressed, c.regressed) << c.name;
    ASSERT_EQ(cmp.objectives.size(), 1u) << c.name;
    EXPECT_EQ(cmp.objectives[0].status, c.regressed ? "regressed" : "ok") << c.name;
  }
}

TEST(BaselineTest, BaselineThatDidNotRecoverIsNotCompared) {
  std::vector<ReportModel> runs{RunWith("r", 50.0)};
  auto cmp = CompareWithBaseline(RunWith("base", std::nullopt, 0.25, "FAIL"), runs, Tol("0s"));
  EXPECT_FALSE(cmp.regressed);
  EXPECT_EQ(cmp.objectives[0].status, "not-compared");
}

TEST(BaselineTest, ObjectiveAbsentFromTheRunsIsNotCompared) {
  std::vector<ReportModel> runs{RunWith("r", 50.0, 0.25, "PASS", "other")};
  auto cmp = CompareWithBaseline(RunWith("base", 1.0), runs, Tol("0s"));
  EXPECT_FALSE(cmp.regressed);
  EXPECT_EQ(cmp.objectives[0].status, "not-compared");
  EXPECT_EQ(cmp.objectives[0].runs_compared, 0);
}

TEST(RepeatExitCodeTest, WorstVerdictThenRegression) {
  auto code = [](std::vector<std::string> verdicts, bool regressed) {
    std::vector<ReportModel> runs;
    for (auto& v : verdicts) runs.push_back(RunWith("r", 1.0, 0.25, v));
    return RepeatExitCode(runs, regressed);
  };
  EXPECT_EQ(code({"PASS", "PASS"}, false), 0);
  EXPECT_EQ(code({"PASS", "PASS"}, true), 5);
  EXPECT_EQ(code({"PASS", "FAIL"}, true), 1);
  EXPECT_EQ(code({"FAIL", "ERROR"}, false), 4);
  EXPECT_EQ(code({"ERROR", "ABORTED", "PASS"}, false), 3);
  EXPECT_EQ(code({}, false), 3);
}

TEST(RepeatSummaryTest, JsonCarriesDistributionsRunsAndBaseline) {
  std::vector<ReportModel> runs{RunWith("a", 3.0), RunWith("b", 1.0),
                                RunWith("c", std::nullopt, 0.25, "FAIL")};
  auto cmp = CompareWithBaseline(RunWith("base", 1.0), runs, Tol("20%"));
  auto s = SummarizeRepeat("exp", 3, 10, false, runs, cmp);
  EXPECT_EQ(s.verdict, "FAIL");
  EXPECT_EQ(s.exit_code, 1);
  auto j = nlohmann::json::parse(RenderRepeatJson(s));
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["repeat"]["completed"], 3);
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][2]["objectives"][0]["time_to_recover_s"], nullptr);
  const auto& ttr = j["objectives"][0]["time_to_recover_s"];
  EXPECT_EQ(ttr["count"], 2);
  EXPECT_DOUBLE_EQ(ttr["median"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(ttr["min"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(ttr["max"].get<double>(), 3.0);
  EXPECT_EQ(j["objectives"][0]["verdicts"], (nlohmann::json{"PASS", "PASS", "FAIL"}));
  EXPECT_EQ(j["baseline"]["run_id"], "base");
  EXPECT_EQ(j["baseline"]["objectives"][0]["status"], "regressed");  // median lo = 2.75 > 1.5
  auto text = RenderRepeatText(s);
  EXPECT_NE(text.find("median 2.00s p95 3.00s min 1.00s max 3.00s (2 of 3 run(s))"),
            std::string::npos)
      << text;
}

TEST(RepeatSummaryTest, AllPassButRegressedIsExitFive) {
  std::vector<ReportModel> runs{RunWith("a", 6.0), RunWith("b", 6.0), RunWith("c", 6.0)};
  auto s = SummarizeRepeat("exp", 3, 1, false, runs,
                           CompareWithBaseline(RunWith("base", 1.0), runs, Tol("0s")));
  EXPECT_EQ(s.verdict, "REGRESSED");
  EXPECT_EQ(s.exit_code, 5);
}

TEST(TrendTest, TextJsonAndHtmlShowEachRunsBracket) {
  std::vector<ReportModel> runs{RunWith("old1", 1.5), RunWith("mid2", std::nullopt, 0.25, "FAIL"),
                                RunWith("new<3>", 2.0)};
  auto t = BuildTrend("exp", runs);
  ASSERT_EQ(t.series.size(), 1u);
  ASSERT_EQ(t.series[0].points.size(), 3u);
  EXPECT_EQ(t.series[0].points[0].run_id, "old1");  // oldest first, as given
  auto text = RenderTrendText(t);
  EXPECT_NE(text.find("1.50s [1.25, 1.75]"), std::string::npos) << text;
  EXPECT_NE(text.find("not recovered"), std::string::npos) << text;
  auto j = nlohmann::json::parse(RenderTrendJson(t));
  EXPECT_DOUBLE_EQ(j["objectives"][0]["points"][2]["recover_hi_s"].get<double>(), 2.25);
  EXPECT_EQ(j["objectives"][0]["points"][1]["recover_lo_s"], nullptr);
  auto html = RenderTrendHtml(t);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://www.w3.org/2000/svg\" width") != std::string::npos, true);
  EXPECT_EQ(html.find("new<3>"), std::string::npos) << "run ids are escaped";
  EXPECT_NE(html.find("data-run=\"new&lt;3&gt;\""), std::string::npos);
  // Two brackets drawn, one cross for the unrecovered run.
  size_t brackets = 0;
  for (size_t at = html.find("class=\"bracket\""); at != std::string::npos;
       at = html.find("class=\"bracket\"", at + 1)) {
    ++brackets;
  }
  EXPECT_EQ(brackets, 2u);
  EXPECT_NE(html.find("class=\"unrecovered\""), std::string::npos);
}

TEST(TrendTest, NoRunsSaysSo) {
  auto t = BuildTrend("exp", {});
  EXPECT_NE(RenderTrendText(t).find("no recorded run"), std::string::npos);
  EXPECT_NE(RenderTrendHtml(t).find("No recorded run"), std::string::npos);
}

}  // namespace
}  // namespace faultline::report
