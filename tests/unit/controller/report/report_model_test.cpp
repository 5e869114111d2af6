#include "controller/report/report_model.h"

#include <gtest/gtest.h>

#include "controller/report/html_report.h"
#include "controller/report/junit_report.h"
#include "controller/report/markup.h"
#include "controller/report/report.h"
#include "controller/report/stored_report.h"
#include "tests/unit/controller/report/report_fixture.h"

namespace faultline::report {
namespace {

using testing::SampleRun;

TEST(ReportModelTest, JsonRoundTripKeepsEveryField) {
  std::string json = RenderJson(SampleRun());
  auto parsed = ParseReportJson(json, "report.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(RenderJson(*parsed), json);
  EXPECT_EQ(parsed->verdict, "PASS");
  ASSERT_EQ(parsed->objectives.size(), 2u);
  EXPECT_DOUBLE_EQ(*parsed->objectives[0].time_to_recover_s, 5.0);
  EXPECT_FALSE(parsed->objectives[1].time_to_detect_s.has_value());
  ASSERT_EQ(parsed->faults.size(), 1u);
  EXPECT_EQ(parsed->faults[0].agents[0].evidence.at("queries_faulted"), 57u);
  EXPECT_EQ(parsed->probes[0].samples.size(), 120u);
}

// Where an agent-side probe ran (a host, or a workload on it) survives a saved report and is shown
// in the text report.
TEST(ReportModelTest, WhereAProbeRanIsKeptAndShown) {
  using namespace std::chrono_literals;
  auto run = SampleRun();
  run.probes[0].from = "orders";
  run.probes[0].sites = {
      {"fl-app", 10us, 120us, 240us, "container fl-orders-1 (docker 3f2a) on fl-app"},
      {"fl-db-east", 10us, 130us, 260us, ""}};
  std::string json = RenderJson(run);
  auto parsed = ParseReportJson(json, "report.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(RenderJson(*parsed), json);
  ASSERT_EQ(parsed->probes[0].ran_on.size(), 2u);
  EXPECT_EQ(parsed->probes[0].ran_on[0].workload, "container fl-orders-1 (docker 3f2a) on fl-app");
  EXPECT_EQ(parsed->probes[0].ran_on[1].workload, "");
  EXPECT_NE(json.find("\"ran_in\": \"workload\""), std::string::npos);
  EXPECT_NE(json.find("\"ran_in\": \"host\""), std::string::npos);
  std::string text = RenderText(*parsed);
  EXPECT_NE(text.find("from orders: ran on container fl-orders-1 (docker 3f2a) on fl-app (clock "
                      "±0.120ms), host fl-db-east (clock ±0.130ms)"),
            std::string::npos)
      << text;
}

TEST(ReportModelTest, BracketsAndSampleAnswersAreFirstClassFields) {
  std::string json = RenderJson(SampleRun(true));
  auto parsed = ParseReportJson(json, "report.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const auto& o = parsed->objectives[0];
  ASSERT_TRUE(o.recover_bracket.has_value());
  EXPECT_DOUBLE_EQ(o.recover_bracket->lo_s, 4.75);
  EXPECT_DOUBLE_EQ(o.recover_bracket->hi_s, 5.003);
  ASSERT_TRUE(o.detect_bracket.has_value());
  EXPECT_DOUBLE_EQ(o.detect_bracket->lo_s, 1.0);
  EXPECT_FALSE(parsed->objectives[1].recover_bracket.has_value());  // no impact: no bracket
  EXPECT_NE(json.find("\"time_to_recover_bracket_s\": [\n        4.75,"), std::string::npos);
  // Every sample carries its send (t_s) and answer instants.
  const auto& s = parsed->probes[0].samples[30];
  EXPECT_DOUBLE_EQ(s.answered_s, s.t_s + s.latency_ms / 1000);
  // The text report states the bracket; nothing claims "± one interval".
  std::string text = RenderText(*parsed);
  EXPECT_NE(text.find("[4.75s, 5.00s]"), std::string::npos);
  EXPECT_EQ(text.find("±"), std::string::npos);
  EXPECT_NE(
      RenderJunit(*parsed).find("name=\"objective.automated-failover.time_to_recover_bracket_s\" "
                                "value=\"[4.750, 5.003]\""),
      std::string::npos);
}

// A report stored before brackets existed still loads: no bracket, answers from the latency.
TEST(ReportModelTest, ReportWithoutBracketsStillLoads) {
  auto old = ParseReportJson(
      R"({"experiment":"e","run_id":"r","verdict":"PASS","objectives":[{"name":"o",
          "verdict":"PASS","time_to_recover_s":1.5,"uncertainty_s":0.25}],
          "probes":[{"name":"p","samples":[{"t_s":2.0,"ok":true,"latency_ms":30}]}]})",
      "old.json");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_FALSE(old->objectives[0].recover_bracket.has_value());
  EXPECT_FALSE(old->objectives[0].inconclusive);
  EXPECT_DOUBLE_EQ(old->probes[0].samples[0].answered_s, 2.03);
  auto bad = ParseReportJson(
      R"({"experiment":"e","run_id":"r","verdict":"PASS","objectives":[{"name":"o",
          "verdict":"PASS","time_to_recover_bracket_s":[2, 1]}]})",
      "bad.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("objectives[0].time_to_recover_bracket_s"),
            std::string::npos);
}

// `run --report-html` renders the run; `report FILE --format html` renders the saved JSON: a
// person must get the same page either way (likewise JUnit and text).
TEST(ReportModelTest, SavedReportRendersIdenticallyToTheRun) {
  for (bool failover : {true, false}) {
    auto run = SampleRun(failover);
    auto saved = ParseReportJson(RenderJson(run), "report.json");
    ASSERT_TRUE(saved.ok()) << saved.status().message();
    auto live = FromRun(run);
    EXPECT_EQ(RenderHtml(*saved), RenderHtml(live));
    EXPECT_EQ(RenderJunit(*saved), RenderJunit(live));
    EXPECT_EQ(RenderText(*saved), RenderText(live));
  }
}

// The run of SampleRun with one objective of each game-day kind: detection met, availability
// missed, latency inconclusive (too few samples).
engine::RunResult GameDayRun() {
  using namespace std::chrono_literals;
  engine::RunResult r = SampleRun(true);
  engine::ObjectiveResult d;
  d.name = "noticed";
  d.probe = "orders-api";
  d.kind = experiment::Objective::Kind::kDetect;
  d.target = 2min;
  d.figures.time_to_detect = 1250ms;
  d.figures.detect_bracket = engine::Bracket{1000ms, 1253ms};
  d.figures.samples = 80;
  d.verdict = engine::ObjectiveVerdict::kPass;
  d.note = "impact noticed by the probe 1.25s after inject";
  r.objectives.push_back(d);
  engine::ObjectiveResult a;
  a.name = "availability";
  a.probe = "orders-api";
  a.kind = experiment::Objective::Kind::kAvailability;
  a.figures.samples = 80;
  a.availability = engine::AvailabilityFigure{0.995, 66.0 / 80, 66, 80, 0};
  a.verdict = engine::ObjectiveVerdict::kFail;
  a.note = "82.50% of the fault window's samples good (66 of 80), below the 99.5% required";
  r.objectives.push_back(a);
  engine::ObjectiveResult l;
  l.name = "p99-latency";
  l.probe = "orders-api";
  l.kind = experiment::Objective::Kind::kLatency;
  l.target = 500ms;
  l.figures.samples = 80;
  engine::LatencyFigure lf;
  lf.limit.percentile = 99;
  lf.limit.below = 500ms;
  lf.limit.min_samples = 100;
  lf.samples = 66;
  lf.failures = 14;
  l.latency = lf;
  l.verdict = engine::ObjectiveVerdict::kFail;
  l.inconclusive = true;
  l.note = "inconclusive, failed safe: 66 successful sample(s) in the fault window";
  r.objectives.push_back(l);
  r.verdict = engine::Verdict::kFail;
  r.reason = "objective availability missed: " + a.note;
  return r;
}

TEST(ReportModelTest, GameDayObjectivesShowLimitMeasuredAndStateInEveryFormat) {
  auto run = GameDayRun();
  std::string json = RenderJson(run);
  auto parsed = ParseReportJson(json, "report.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(RenderJson(*parsed), json);  // the new fields round-trip
  ASSERT_EQ(parsed->objectives.size(), 5u);
  const auto& rec = parsed->objectives[0];
  EXPECT_EQ(rec.kind, "recover_within");
  EXPECT_EQ(rec.limit, "recover within 15s (stable 3s)");
  EXPECT_EQ(rec.measured, "5.00s in [4.75s, 5.00s]");
  EXPECT_EQ(rec.state, "met");
  const auto& d = parsed->objectives[2];
  EXPECT_EQ(d.kind, "detect_within");
  EXPECT_EQ(d.limit, "detect within 2m");
  EXPECT_EQ(d.measured, "1.25s in [1.00s, 1.25s]");
  EXPECT_EQ(d.state, "met");
  const auto& a = parsed->objectives[3];
  EXPECT_EQ(a.kind, "availability");
  EXPECT_EQ(a.limit, "at least 99.5% of samples good");
  EXPECT_EQ(a.measured, "82.50% (66 of 80 samples good)");
  EXPECT_EQ(a.state, "missed");
  ASSERT_TRUE(a.availability_objective.has_value());
  EXPECT_EQ(a.availability_objective->slots, 80);
  const auto& l = parsed->objectives[4];
  EXPECT_EQ(l.kind, "latency");
  EXPECT_EQ(l.limit, "p99 below 500ms");
  EXPECT_EQ(l.measured, "— (66 of the 100 samples needed)");
  EXPECT_EQ(l.state, "inconclusive");
  ASSERT_TRUE(l.latency_objective.has_value());
  EXPECT_FALSE(l.latency_objective->measured_s.has_value());
  EXPECT_NE(json.find("\"latency_objective\": {"), std::string::npos);
  EXPECT_NE(json.find("\"state\": \"inconclusive\""), std::string::npos);

  std::string text = RenderText(*parsed);
  EXPECT_NE(text.find("availability: at least 99.5% of samples good; measured 82.50% (66 of 80 "
                      "samples good) (missed)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("latency: p99 below 500ms; measured — (66 of the 100 samples needed) "
                      "(inconclusive)"),
            std::string::npos)
      << text;
  std::string html = RenderHtml(*parsed);
  EXPECT_NE(html.find("<tr data-kind=\"detect_within\"><td>noticed</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>p99 below 500ms</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"state missed\">missed</td>"), std::string::npos);
  std::string junit = RenderJunit(*parsed);
  EXPECT_NE(junit.find("name=\"objective.noticed.state\" value=\"met\""), std::string::npos);
  EXPECT_NE(junit.find("message=\"availability missed: 82.50% (66 of 80 samples good) (limit: at "
                       "least 99.5% of samples good)\""),
            std::string::npos)
      << junit;
  EXPECT_EQ(RenderHtml(*parsed), RenderHtml(FromRun(run)));
}

// A report written before objective kinds existed loads as recovery objectives, with the words
// derived from its figures.
TEST(ReportModelTest, ReportWithoutObjectiveKindsDerivesTheWords) {
  auto old = ParseReportJson(
      R"({"experiment":"e","run_id":"r","verdict":"FAIL","objectives":[{"name":"o",
          "verdict":"FAIL","target_s":15,"samples":10,"time_to_recover_s":null}]})",
      "old.json");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->objectives[0].kind, "recover_within");
  EXPECT_EQ(old->objectives[0].limit, "recover within 15s");
  EXPECT_EQ(old->objectives[0].measured, "not recovered");
  EXPECT_EQ(old->objectives[0].state, "missed");
}

TEST(ReportModelTest, FieldErrorsNameTheField) {
  std::string json = RenderJson(SampleRun());
  auto at = json.find("\"target_s\": 15.0");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 16, "\"target_s\": \"15s\"");
  auto parsed = ParseReportJson(json, "saved.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("saved.json: objectives[0].target_s: expected a number"),
            std::string::npos)
      << parsed.status().message();
}

TEST(ReportModelTest, RequiredFieldsAndSyntaxAreChecked) {
  auto missing = ParseReportJson(R"({"experiment": "x", "verdict": "PASS"})", "a.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("a.json: run_id: missing"), std::string::npos);
  auto broken = ParseReportJson("{\"experiment\": ", "b.json");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("b.json: not a JSON report"), std::string::npos);
  auto not_object = ParseReportJson("[1, 2]", "c.json");
  EXPECT_FALSE(not_object.ok());
  auto minimal = ParseReportJson(R"({"experiment": "x", "run_id": "r", "verdict": "ERROR"})", "d");
  ASSERT_TRUE(minimal.ok()) << minimal.status().message();
  EXPECT_TRUE(minimal->objectives.empty());
}

TEST(ReportModelTest, MissingFileIsNotFound) {
  auto r = LoadReportFile("/nonexistent/rp-report.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(ReportModelTest, AnnotationWallTimeBecomesAnOffset) {
  auto m = FromRun(SampleRun());
  EXPECT_EQ(m.started_at, "2026-11-22T19:03:04.250Z");
  auto offset = OffsetOfWallTime(m.started_at, "2026-11-22T19:03:11.750Z");
  ASSERT_TRUE(offset.has_value());
  EXPECT_DOUBLE_EQ(*offset, 7.5);
  EXPECT_FALSE(OffsetOfWallTime(m.started_at, "yesterday").has_value());

  std::string json = RenderJson(m);
  auto at = json.rfind("\"annotations\": []");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 17,
               R"("annotations": [{"at": "2026-11-22T19:03:11.750Z", "author": "ana",
                                   "text": "paged on-call"}])");
  auto parsed = ParseReportJson(json, "annotated.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->annotations.size(), 1u);
  EXPECT_DOUBLE_EQ(*parsed->annotations[0].t_s, 7.5);
  EXPECT_NE(RenderText(*parsed).find("+7.50s ana: paged on-call"), std::string::npos);
}

TEST(ReportModelTest, VerdictLineSaysVerdictExperimentAndReason) {
  EXPECT_EQ(RenderVerdictLine(FromRun(SampleRun(false))),
            "FAIL dynamodb-dns-failover (run r-20261122-190304-abcd): objective "
            "automated-failover missed: not recovered within the 19.95s window after inject "
            "(target 15s)\n");
}

// Agent errors, evidence, annotations and names reach the terminal through the text report:
// their control sequences are printed as visible escapes, the report's own newlines are kept.
TEST(ReportModelTest, TextReportStripsControlSequences) {
  auto m = FromRun(SampleRun(false));
  m.reason = "missed\033[2J\033]0;owned\007";
  ASSERT_FALSE(m.faults.empty());
  ASSERT_FALSE(m.faults[0].agents.empty());
  m.faults[0].agents[0].error =
      "boom\r\033[1Aforged\xC2\x9B"
      "1m";
  std::string text = RenderText(m);
  EXPECT_EQ(text.find('\033'), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xC2\x9B"), std::string::npos) << text;
  EXPECT_NE(text.find("error: boom\\x0d\\x1b[1Aforged\\u009b1m\n"), std::string::npos) << text;
  std::string line = RenderVerdictLine(m);
  EXPECT_EQ(line.find('\033'), std::string::npos) << line;
  EXPECT_NE(line.find("missed\\x1b[2J\\x1b]0;owned\\x07\n"), std::string::npos) << line;
  // Negative control: plain text passes unchanged, newlines included.
  EXPECT_EQ(StripTerminalControls("a\tb\nc \xC3\xA9"), "a\tb\nc \xC3\xA9");
}

}  // namespace
}  // namespace faultline::report

namespace faultline::report {
namespace {

// `faultline report RUN --format html` of a recorded run: the stored report and the annotations
// people added later, on one timeline.
TEST(StoredRunReportTest, AnnotationsOfARecordedRunReachTheModelAndTheTimeline) {
  auto run = testing::SampleRun(true);
  store::StoredRun stored;
  stored.run.id = run.run_id;
  stored.run.experiment = run.experiment;
  stored.run.state = store::RunState::kFinished;
  stored.run.verdict = "PASS";
  stored.run.started_unix_ms = run.started_unix_ms;
  stored.run.report_json = RenderJson(run);
  stored.annotations.push_back({1, run.run_id, run.started_unix_ms + 6500, "ana", "paged on-call"});
  auto model = LoadStoredReport(stored);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_EQ(model->annotations.size(), 1u);
  EXPECT_DOUBLE_EQ(*model->annotations[0].t_s, 6.5);
  EXPECT_EQ(model->annotations[0].author, "ana");
  std::string html = RenderHtml(*model);
  EXPECT_NE(html.find("<g class=\"marker note\"><title>ana: paged on-call</title>"),
            std::string::npos);
  EXPECT_NE(RenderText(*model).find("+6.50s ana: paged on-call"), std::string::npos);
}

TEST(StoredRunReportTest, RunWithoutReportIsAPreconditionFailure) {
  store::StoredRun stored;
  stored.run.id = "abcd1234";
  stored.run.state = store::RunState::kRunning;
  auto model = LoadStoredReport(stored);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(model.status().message().find("has not finished"), std::string::npos);
}

}  // namespace
}  // namespace faultline::report
