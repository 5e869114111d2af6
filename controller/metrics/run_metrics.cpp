#include "controller/metrics/run_metrics.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace faultline::run_metrics {
namespace {

using metrics::Labels;
using metrics::MetricType;
using metrics::Registry;
using metrics::Sample;

constexpr char kRuns[] = "faultline_runs_total";
constexpr char kRunVerdict[] = "faultline_run_verdict";
constexpr char kRunEnd[] = "faultline_run_last_end_timestamp_seconds";
constexpr char kRunDuration[] = "faultline_run_duration_seconds";
constexpr char kObjVerdict[] = "faultline_objective_verdict";
constexpr char kObjTarget[] = "faultline_objective_target_seconds";
constexpr char kObjDetect[] = "faultline_objective_time_to_detect_seconds";
constexpr char kObjRecover[] = "faultline_objective_time_to_recover_seconds";
constexpr char kObjUncertainty[] = "faultline_objective_uncertainty_seconds";
constexpr char kObjAvailability[] = "faultline_objective_availability_ratio";
constexpr char kProbeSamples[] = "faultline_probe_samples_total";
constexpr char kProbeLatency[] = "faultline_probe_latency_seconds";
constexpr char kEvidence[] = "faultline_run_fault_evidence";

constexpr engine::Verdict kVerdicts[] = {engine::Verdict::kPass, engine::Verdict::kFail,
                                         engine::Verdict::kAborted, engine::Verdict::kError};
constexpr engine::ObjectiveVerdict kObjectiveVerdicts[] = {engine::ObjectiveVerdict::kPass,
                                                           engine::ObjectiveVerdict::kFail,
                                                           engine::ObjectiveVerdict::kUnknown};

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Status DeclareRunMetrics(Registry& registry) {
  struct Decl {
    const char* name;
    MetricType type;
    const char* help;
  };
  const Decl decls[] = {
      {kRuns, MetricType::kCounter, "Experiment runs, by verdict (PASS, FAIL, ABORTED, ERROR)."},
      {kRunVerdict, MetricType::kGauge, "1 for the verdict of the experiment's last run, else 0."},
      {kRunEnd, MetricType::kGauge, "When the experiment's last run ended (Unix seconds)."},
      {kRunDuration, MetricType::kGauge, "How long the experiment's last run took."},
      {kObjVerdict, MetricType::kGauge,
       "1 for the objective's verdict in the last run (PASS, FAIL, UNKNOWN), else 0."},
      {kObjTarget, MetricType::kGauge, "The objective's recovery-time target."},
      {kObjDetect, MetricType::kGauge,
       "Time to detect in the last run (NaN when no failure was observed)."},
      {kObjRecover, MetricType::kGauge,
       "Time to recover in the last run (NaN when not recovered)."},
      {kObjUncertainty, MetricType::kGauge, "Uncertainty of the figures: one probe interval."},
      {kObjAvailability, MetricType::kGauge, "Share of successful probe samples in the window."},
      {kProbeSamples, MetricType::kCounter, "Probe samples, by result (success, failure)."},
      {kProbeLatency, MetricType::kGauge, "Probe latency percentiles of the last run."},
      {kEvidence, MetricType::kGauge,
       "Evidence counters each agent reported for a fault in the last run."},
  };
  for (const Decl& d : decls) {
    if (Status s = registry.Declare(d.name, d.type, d.help); !s.ok()) return s;
  }
  return Status::Ok();
}

Status RecordRun(Registry& registry, const engine::RunResult& result) {
  const std::string& exp = result.experiment;
  Status status;
  auto check = [&status](Status s) {
    if (status.ok() && !s.ok()) status = std::move(s);
  };
  check(registry.Increment(kRuns, {{"experiment", exp}, {"verdict", VerdictName(result.verdict)}}));
  for (engine::Verdict v : kVerdicts) {
    check(registry.Set(kRunVerdict, {{"experiment", exp}, {"verdict", VerdictName(v)}},
                       v == result.verdict ? 1 : 0));
  }
  check(registry.Set(kRunEnd, {{"experiment", exp}}, result.ended_unix_ms / 1000.0));
  check(registry.Set(kRunDuration, {{"experiment", exp}},
                     (result.ended_unix_ms - result.started_unix_ms) / 1000.0));
  for (const engine::ObjectiveResult& o : result.objectives) {
    Labels l = {{"experiment", exp}, {"objective", o.name}};
    for (engine::ObjectiveVerdict v : kObjectiveVerdicts) {
      Labels lv = l;
      lv.push_back({"verdict", ObjectiveVerdictName(v)});
      check(registry.Set(kObjVerdict, lv, v == o.verdict ? 1 : 0));
    }
    check(registry.Set(kObjTarget, l, Seconds(o.target)));
    check(registry.Set(kObjUncertainty, l, Seconds(o.figures.uncertainty)));
    check(registry.Set(kObjAvailability, l, o.figures.availability));
    // A figure this run did not reach must not keep the previous run's value: NaN says "none"
    // in a way every PromQL comparison treats as false.
    check(
        registry.Set(kObjDetect, l,
                     o.figures.time_to_detect ? Seconds(*o.figures.time_to_detect) : std::nan("")));
    check(registry.Set(
        kObjRecover, l,
        o.figures.time_to_recover ? Seconds(*o.figures.time_to_recover) : std::nan("")));
  }
  for (const engine::ProbeRecord& p : result.probes) {
    double ok = 0, failed = 0;
    for (const engine::ProbeSample& s : p.samples) (s.sample.ok ? ok : failed) += 1;
    check(registry.Increment(kProbeSamples,
                             {{"experiment", exp}, {"probe", p.name}, {"result", "success"}}, ok));
    check(registry.Increment(
        kProbeSamples, {{"experiment", exp}, {"probe", p.name}, {"result", "failure"}}, failed));
    const std::pair<const char*, Duration> quantiles[] = {
        {"0.5", p.latency.p50}, {"0.9", p.latency.p90}, {"0.99", p.latency.p99}};
    for (const auto& [q, d] : quantiles) {
      check(registry.Set(kProbeLatency, {{"experiment", exp}, {"probe", p.name}, {"quantile", q}},
                         Seconds(d)));
    }
  }
  for (const engine::FaultOnAgent& f : result.faults) {
    for (const auto& [counter, value] : f.evidence) {
      check(registry.Set(
          kEvidence,
          {{"experiment", exp}, {"fault", f.fault_name}, {"agent", f.agent}, {"counter", counter}},
          static_cast<double>(value)));
    }
  }
  return status;
}

}  // namespace faultline::run_metrics
