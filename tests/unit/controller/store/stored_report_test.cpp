// A stored run's report re-rendered: the JSON report read back (into the ReportModel every
// renderer uses) gives the same report, and annotations come out relative to the run's start and
// absolute.
#include "controller/report/stored_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "controller/report/report.h"

namespace faultline::report {
namespace {

using std::chrono::milliseconds;

engine::RunResult SampleRun() {
  engine::RunResult r;
  r.experiment = "dynamodb-dns-failover";
  r.run_id = "3fa9c2d1e0b4";
  r.verdict = engine::Verdict::kFail;
  r.reason = "automated-failover: not recovered within 15m";
  r.started_unix_ms = 1'795'000'000'123;
  r.ended_unix_ms = r.started_unix_ms + 42'250;
  r.started = MonoTime(987'654'321'000);
  r.t_inject_first = r.started + milliseconds(5'100);
  r.t_inject = r.started + milliseconds(5'130);
  r.t_revert_start = r.started + milliseconds(35'000);
  r.t_revert = r.started + milliseconds(35'020);
  r.ended = r.started + milliseconds(42'250);
  r.targets = {{"app", {"fl-app"}}};
  engine::FaultOnAgent f;
  f.fault_name = "dynamodb-dns";
  f.fault_id = "3fa9c2d1e0b4_0";
  f.target = "app";
  f.agent = "fl-app";
  f.kind = "dns";
  f.applied_at = r.t_inject;
  f.reverted_at = r.t_revert;
  f.applied_at_unix_ms = r.started_unix_ms + 5'130;
  f.reverted_at_unix_ms = r.started_unix_ms + 35'020;
  f.revert_reason = "duration elapsed";
  f.evidence = {{"queries_faulted", 118}, {"queries_passed", 7}};
  r.faults.push_back(f);
  engine::ProbeRecord p;
  p.name = "orders-api";
  p.interval = milliseconds(250);
  for (int i = 0; i < 8; ++i) {
    engine::ProbeSample s;
    s.sample.at = r.started + milliseconds(250 * i);
    s.sample.ok = i < 5;
    s.sample.latency = milliseconds(3 + i);
    s.detail = s.sample.ok ? "200" : "503";
    p.samples.push_back(s);
  }
  p.latency = engine::ComputeLatency({});
  p.latency.p50 = milliseconds(4);
  p.latency.p99 = milliseconds(7);
  r.probes.push_back(p);
  engine::ObjectiveResult o;
  o.name = "automated-failover";
  o.probe = "orders-api";
  o.target = std::chrono::minutes(15);
  o.stable_for = std::chrono::seconds(3);
  o.figures.time_to_detect = milliseconds(120);
  o.figures.uncertainty = milliseconds(250);
  o.figures.availability = 0.25;
  o.figures.downtime = milliseconds(29'000);
  o.figures.samples = 120;
  o.figures.failures = 90;
  o.verdict = engine::ObjectiveVerdict::kFail;
  o.note = "not recovered";
  r.objectives.push_back(o);
  r.warnings = {"fl-db-west: slow lease renewal"};
  return r;
}

TEST(StoredReportTest, JsonReportReadsBackToTheSameReport) {
  engine::RunResult run = SampleRun();
  std::string json = RenderJson(run);
  auto back = ParseReportJson(json, "stored report");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RenderJson(*back), json);
  EXPECT_EQ(RenderText(*back), RenderText(run));
}

TEST(StoredReportTest, MalformedReportIsAnError) {
  EXPECT_EQ(ParseReportJson("not json", "s").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseReportJson(R"({"experiment": "x", "run_id": "r", "verdict": "FAIL",
                                "objectives": [{"name": "o", "verdict": "FAIL",
                                                "target_s": "soon"}]})",
                            "s")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(StoredReportTest, AnnotationsRelativeToTheRunStartAndAbsolute) {
  engine::RunResult run = SampleRun();
  store::StoredRun stored;
  stored.run.id = run.run_id;
  stored.run.experiment = run.experiment;
  stored.run.state = store::RunState::kFinished;
  stored.run.verdict = "FAIL";
  stored.run.started_unix_ms = run.started_unix_ms;
  stored.run.report_json = RenderJson(run);
  stored.run.source = "cli";
  stored.annotations.push_back({1, run.run_id, run.started_unix_ms + 12'500, "alice", "paged"});
  auto json = RenderStoredJson(stored);
  ASSERT_TRUE(json.ok());
  auto j = nlohmann::json::parse(*json);
  EXPECT_EQ(j["verdict"], "FAIL");  // the stored report's fields are kept
  EXPECT_EQ(j["probes"][0]["samples"].size(), 8u);
  ASSERT_EQ(j["annotations"].size(), 1u);
  EXPECT_DOUBLE_EQ(j["annotations"][0]["t_s"].get<double>(), 12.5);
  EXPECT_EQ(j["annotations"][0]["at"], IsoTime(run.started_unix_ms + 12'500));
  EXPECT_EQ(j["annotations"][0]["author"], "alice");
  auto text = RenderStoredText(stored);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("Verdict: FAIL"), std::string::npos);
  EXPECT_NE(text->find("+12.50s"), std::string::npos);
  EXPECT_NE(text->find("alice: paged"), std::string::npos);
}

TEST(StoredReportTest, InterruptedRunWithoutReportStillRenders) {
  store::StoredRun stored;
  stored.run.id = "abcd1234";
  stored.run.experiment = "x";
  stored.run.state = store::RunState::kInterrupted;
  stored.run.started_unix_ms = 1'795'000'000'000;
  stored.run.ended_unix_ms = 1'795'000'060'000;
  auto text = RenderStoredText(stored);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("interrupted"), std::string::npos);
  auto j = nlohmann::json::parse(*RenderStoredJson(stored));
  EXPECT_EQ(j["state"], "interrupted");
  EXPECT_TRUE(j["verdict"].is_null());
}

}  // namespace
}  // namespace faultline::report
