#include "controller/metrics/run_metrics.h"

#include <gtest/gtest.h>

namespace faultline::run_metrics {
namespace {

using std::chrono::milliseconds;

engine::RunResult MakeRun(engine::Verdict verdict, std::optional<Duration> recover) {
  engine::RunResult r;
  r.experiment = "dynamodb-dns-failover";
  r.run_id = "r1";
  r.verdict = verdict;
  r.started_unix_ms = 1'000'000;
  r.ended_unix_ms = 1'042'500;
  engine::ObjectiveResult o;
  o.name = "automated-failover";
  o.probe = "orders-api";
  o.target = std::chrono::minutes(15);
  o.verdict = verdict == engine::Verdict::kPass ? engine::ObjectiveVerdict::kPass
                                                : engine::ObjectiveVerdict::kFail;
  o.figures.time_to_detect = milliseconds(250);
  o.figures.time_to_recover = recover;
  o.figures.uncertainty = milliseconds(250);
  o.figures.availability = 0.75;
  r.objectives.push_back(o);
  engine::ProbeRecord p;
  p.name = "orders-api";
  for (bool ok : {true, true, false}) p.samples.push_back({engine::Sample{{}, ok, {}}, ""});
  p.latency.p50 = milliseconds(2);
  r.probes.push_back(p);
  engine::FaultOnAgent f;
  f.fault_name = "dynamodb-dns";
  f.agent = "fl-app";
  f.evidence = {{"queries_faulted", 12}};
  r.faults.push_back(f);
  return r;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(RunMetricsTest, RecordsVerdictObjectiveFiguresProbesAndEvidence) {
  metrics::Registry r;
  ASSERT_TRUE(DeclareRunMetrics(r).ok());
  ASSERT_TRUE(DeclareRunMetrics(r).ok());  // idempotent
  ASSERT_TRUE(RecordRun(r, MakeRun(engine::Verdict::kPass, milliseconds(1750))).ok());
  std::string t = r.Render();
  const std::string exp = "experiment=\"dynamodb-dns-failover\"";
  EXPECT_TRUE(Has(t, "faultline_runs_total{" + exp + ",verdict=\"PASS\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_run_verdict{" + exp + ",verdict=\"PASS\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_run_verdict{" + exp + ",verdict=\"FAIL\"} 0"));
  EXPECT_TRUE(Has(t, "faultline_run_duration_seconds{" + exp + "} 42.5"));
  const std::string obj = exp + ",objective=\"automated-failover\"";
  EXPECT_TRUE(Has(t, "faultline_objective_verdict{" + obj + ",verdict=\"PASS\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_objective_target_seconds{" + obj + "} 900"));
  EXPECT_TRUE(Has(t, "faultline_objective_time_to_detect_seconds{" + obj + "} 0.25"));
  EXPECT_TRUE(Has(t, "faultline_objective_time_to_recover_seconds{" + obj + "} 1.75"));
  EXPECT_TRUE(Has(t, "faultline_objective_availability_ratio{" + obj + "} 0.75"));
  const std::string probe = exp + ",probe=\"orders-api\"";
  EXPECT_TRUE(Has(t, "faultline_probe_samples_total{" + probe + ",result=\"success\"} 2"));
  EXPECT_TRUE(Has(t, "faultline_probe_samples_total{" + probe + ",result=\"failure\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_probe_latency_seconds{" + probe + ",quantile=\"0.5\"} 0.002"));
  EXPECT_TRUE(
      Has(t, "faultline_run_fault_evidence{" + exp +
                 ",fault=\"dynamodb-dns\",agent=\"fl-app\",counter=\"queries_faulted\"} 12"));
}

TEST(RunMetricsTest, ASecondRunOverwritesGaugesAndAddsToCounters) {
  metrics::Registry r;
  ASSERT_TRUE(DeclareRunMetrics(r).ok());
  ASSERT_TRUE(RecordRun(r, MakeRun(engine::Verdict::kPass, milliseconds(1750))).ok());
  // The negative control: no recovery inside the window.
  ASSERT_TRUE(RecordRun(r, MakeRun(engine::Verdict::kFail, std::nullopt)).ok());
  std::string t = r.Render();
  const std::string exp = "experiment=\"dynamodb-dns-failover\"";
  EXPECT_TRUE(Has(t, "faultline_runs_total{" + exp + ",verdict=\"PASS\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_runs_total{" + exp + ",verdict=\"FAIL\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_run_verdict{" + exp + ",verdict=\"PASS\"} 0"));
  EXPECT_TRUE(Has(t, "faultline_run_verdict{" + exp + ",verdict=\"FAIL\"} 1"));
  const std::string obj = exp + ",objective=\"automated-failover\"";
  EXPECT_TRUE(Has(t, "faultline_objective_verdict{" + obj + ",verdict=\"FAIL\"} 1"));
  EXPECT_TRUE(Has(t, "faultline_objective_time_to_recover_seconds{" + obj + "} NaN"));
  EXPECT_TRUE(Has(
      t, "faultline_probe_samples_total{" + exp + ",probe=\"orders-api\",result=\"success\"} 4"));
}

TEST(RunMetricsTest, RecordWithoutDeclareFails) {
  metrics::Registry r;
  EXPECT_FALSE(RecordRun(r, MakeRun(engine::Verdict::kPass, milliseconds(1))).ok());
}

}  // namespace
}  // namespace faultline::run_metrics
