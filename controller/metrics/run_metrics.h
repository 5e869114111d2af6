#pragma once
// Run metrics: the Prometheus view of finished experiment runs (verdicts, per-objective
// time-to-detect / time-to-recover, probe results, fault evidence), kept in a metrics::Registry.
// `faultline run --metrics-file` writes them for node_exporter's textfile collector; the
// controller daemon records every run it executes into the registry its `--metrics-listen`
// endpoint serves (call DeclareRunMetrics once, then RecordRun after each run).
//
// Families (label `experiment` on all; the last run of an experiment overwrites its gauges):
//   faultline_runs_total{experiment,verdict}                                  counter
//   faultline_run_verdict{experiment,verdict}            gauge, 1 for the last verdict, 0 others
//   faultline_run_last_end_timestamp_seconds{experiment}                      gauge
//   faultline_run_duration_seconds{experiment}                                gauge
//   faultline_objective_verdict{experiment,objective,verdict}                 gauge, 1/0
//   faultline_objective_target_seconds{experiment,objective}                  gauge
//   faultline_objective_time_to_detect_seconds{experiment,objective}          gauge (NaN: none)
//   faultline_objective_time_to_recover_seconds{experiment,objective}         gauge (NaN: none)
//   faultline_objective_uncertainty_seconds{experiment,objective}             gauge
//   faultline_objective_availability_ratio{experiment,objective}              gauge
//   faultline_probe_samples_total{experiment,probe,result}                    counter
//   faultline_probe_latency_seconds{experiment,probe,quantile}                gauge
//   faultline_run_fault_evidence{experiment,fault,agent,counter}              gauge

#include "common/metrics.h"
#include "common/status.h"
#include "controller/engine/run_engine.h"

namespace faultline::run_metrics {

// Declares the families above. Idempotent. Errors only when a family of the same name was
// declared differently (ALREADY_EXISTS).
Status DeclareRunMetrics(metrics::Registry& registry);

// Adds one finished run. Precondition: DeclareRunMetrics succeeded on `registry`. Replaces the
// experiment's previous per-objective figures and
// adds to its counters; a figure the run did not reach is NaN. Returns the first registry error
// (only on a programming error: undeclared family).
Status RecordRun(metrics::Registry& registry, const engine::RunResult& result);

}  // namespace faultline::run_metrics
