#include "controller/report/html_report.h"

#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>

#include "controller/report/markup.h"
#include "tests/unit/controller/report/report_fixture.h"

namespace faultline::report {
namespace {

using testing::Count;
using testing::SampleRun;

TEST(MarkupTest, EscapesMarkupAndReplacesWhatXmlForbids) {
  EXPECT_EQ(EscapeMarkup("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(EscapeMarkup("tab\tnl\n"), "tab\tnl\n");
  EXPECT_EQ(EscapeMarkup("bell\x07"), "bell\xEF\xBF\xBD");
  EXPECT_EQ(EscapeMarkup("bad \xC3\x28"), "bad \xEF\xBF\xBD(");
  EXPECT_EQ(EscapeMarkup("ok é ✓ 😀"), "ok é ✓ 😀");
  EXPECT_EQ(EscapeMarkup("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(HtmlReportTest, SelfContainedWithoutScriptOrExternalResource) {
  std::string html = RenderHtml(FromRun(SampleRun()));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(Count(html, "<script"), 0u);
  EXPECT_EQ(Count(html, "http://"), 1u);  // the SVG namespace only
  EXPECT_EQ(Count(html, "https://"), 0u);
  EXPECT_EQ(Count(html, "src="), 0u);
  EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
}

TEST(HtmlReportTest, TimelineShowsFaultWindowMarkersAndObjectives) {
  std::string html = RenderHtml(FromRun(SampleRun(true)));
  EXPECT_EQ(Count(html, "<svg "), 1u);
  EXPECT_EQ(Count(html, "class=\"fault-bar\""), 1u);
  EXPECT_EQ(Count(html, "class=\"fault-window\""), 1u);
  EXPECT_EQ(Count(html, "<g class=\"marker inject\">"), 1u);
  EXPECT_EQ(Count(html, "<g class=\"marker revert\">"), 1u);
  // automated-failover was detected and recovered; clean-after-revert saw no impact.
  EXPECT_EQ(Count(html, "<g class=\"marker detect\">"), 1u);
  EXPECT_EQ(Count(html, "<g class=\"marker recover\">"), 1u);
  EXPECT_EQ(Count(html, "<g class=\"marker target pass\">"), 2u);
  EXPECT_EQ(Count(html, "class=\"sample failed\""), 1u);  // one failing stretch, merged
  EXPECT_EQ(Count(html, "class=\"sample ok\""), 2u);
  EXPECT_NE(html.find("automated-failover target 15s PASS"), std::string::npos);
  EXPECT_NE(html.find("queries_faulted = <b>57</b>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"verdict\">PASS</span>"), std::string::npos);
}

TEST(HtmlReportTest, DetectAndRecoverMarkersAreDrawnInsideTheirBrackets) {
  ReportModel m = FromRun(SampleRun(true));
  std::string html = RenderHtml(m);
  // The recover marker's band spans the bracket, on the run's time axis (inject at +5s).
  const double lo = *m.t_inject_s + 4.75, hi = *m.t_inject_s + 5.003;
  EXPECT_NE(
      html.find(fmt::format("<rect class=\"band\" data-lo=\"{:.3f}\" data-hi=\"{:.3f}\"", lo, hi)),
      std::string::npos);
  EXPECT_EQ(Count(html, "<path class=\"bracket\""), 2u);  // detect and recover
  EXPECT_NE(html.find("truth in [4.75s, 5.00s]"), std::string::npos);
  EXPECT_EQ(html.find("one probe interval"), std::string::npos);
}

// Negative control: without failover the target is labelled FAIL, no recover marker is drawn.
TEST(HtmlReportTest, MissedObjectiveIsLabelledFail) {
  std::string html = RenderHtml(FromRun(SampleRun(false)));
  EXPECT_EQ(Count(html, "<g class=\"marker target fail\">"), 1u);
  EXPECT_EQ(Count(html, "<g class=\"marker recover\">"), 0u);
  EXPECT_NE(html.find("automated-failover target 15s FAIL"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"banner fail\" id=\"verdict\"><span class=\"verdict\">FAIL"),
            std::string::npos);
}

TEST(HtmlReportTest, TargetBeyondTheRunIsPinnedToTheEdge) {
  auto m = FromRun(SampleRun(true));
  m.objectives[0].target_s = 900;
  std::string html = RenderHtml(m);
  EXPECT_NE(html.find("automated-failover target 15m PASS →"), std::string::npos);
  EXPECT_NE(html.find("beyond the end of the run"), std::string::npos);
}

TEST(HtmlReportTest, UnrevertedFaultIsDrawnOpenEnded) {
  auto run = SampleRun(true);
  run.faults[0].reverted_at.reset();
  run.faults[0].state_unknown = true;
  std::string html = RenderHtml(FromRun(run));
  EXPECT_EQ(Count(html, "class=\"fault-bar open\""), 1u);
  EXPECT_NE(html.find("revert NOT confirmed"), std::string::npos);
  EXPECT_NE(html.find("state unknown"), std::string::npos);
}

TEST(HtmlReportTest, AnnotationsAreFlaggedOnTheTimelineAndListed) {
  auto m = FromRun(SampleRun(true));
  m.annotations.push_back({7.5, "2026-11-22T19:03:11.750Z", "ana", "paged on-call"});
  m.annotations.push_back({std::nullopt, "", "bo", "no time known"});
  std::string html = RenderHtml(m);
  EXPECT_EQ(Count(html, "<g class=\"marker note\">"), 1u);  // only the one with an instant
  EXPECT_NE(html.find("<title>ana: paged on-call</title>"), std::string::npos);
  EXPECT_NE(html.find("<li>+7.50s <b>ana</b>: paged on-call</li>"), std::string::npos);
  EXPECT_NE(html.find("<b>bo</b>: no time known"), std::string::npos);
}

// Names come from experiment files and agents; none of them may become markup.
TEST(HtmlReportTest, HostileNamesAreEscapedEverywhere) {
  auto run = SampleRun(false);
  const std::string evil = "<script>alert(1)</script>";
  const std::string attr = "\"><img src=x onerror=alert(2)>";
  run.experiment = evil;
  run.run_id = attr;
  run.reason = evil;
  run.probes[0].name = attr;
  run.probes[0].samples[30].detail = evil;
  run.faults[0].fault_name = evil;
  run.faults[0].agent = attr;
  run.faults[0].evidence[evil] = 1;
  run.faults[0].error = evil;
  run.objectives[0].name = attr;
  run.objectives[0].note = evil;
  run.warnings.push_back(evil);
  auto m = FromRun(run);
  m.annotations.push_back({3.0, "", attr, "</svg></div>" + evil});
  std::string html = RenderHtml(m);
  EXPECT_EQ(Count(html, "<script"), 0u);
  EXPECT_EQ(Count(html, "<img"), 0u);
  EXPECT_EQ(Count(html, "</svg>"), 1u);
  EXPECT_GT(Count(html, "&lt;script&gt;alert(1)&lt;/script&gt;"), 5u);
  EXPECT_GT(Count(html, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"), 4u);
}

// Each probe says where it ran: the controller, a host, or a workload (escaped like every name).
TEST(HtmlReportTest, ProbesSayWhereTheyRan) {
  auto run = SampleRun(true);
  ASSERT_FALSE(run.probes.empty());
  auto m = FromRun(run);
  std::string html = RenderHtml(m);
  EXPECT_EQ(Count(html, "<th>ran from</th>"), 1u);
  EXPECT_NE(html.find("<td>controller</td>"), std::string::npos);

  m.probes[0].from = "orders";
  m.probes[0].ran_on = {
      {"fl-app", 0.01, 0.12, 0.24, "container fl-orders-1 (docker 3f2a) on fl-app"},
      {"fl-db<x>", 0.01, 0.5, 1.0, ""}};
  html = RenderHtml(m);
  EXPECT_NE(html.find("from orders"), std::string::npos);
  EXPECT_NE(html.find("in container fl-orders-1 (docker 3f2a) on fl-app</span> (clock ±0.120ms)"),
            std::string::npos);
  EXPECT_NE(html.find("host fl-db&lt;x&gt;</span> (clock ±0.500ms)"), std::string::npos);
  EXPECT_EQ(html.find("<td>controller</td>"), std::string::npos);
}

TEST(HtmlReportTest, DeterministicAndRobustToEmptyOrOddReports) {
  auto m = FromRun(SampleRun());
  EXPECT_EQ(RenderHtml(m), RenderHtml(m));
  ReportModel empty;
  empty.experiment = "x";
  empty.run_id = "r";
  empty.verdict = "ERROR";
  EXPECT_NE(RenderHtml(empty).find("No fault was applied."), std::string::npos);
  m.t_end_s = -5;
  m.probes[0].samples[0].latency_ms = 1e300;
  m.objectives[0].uncertainty_s = -1;
  EXPECT_NE(RenderHtml(m).find("</html>"), std::string::npos);
}

}  // namespace
}  // namespace faultline::report
