#pragma once
// PromQlProbe: the `prometheus` probe kind. One sample = one instant PromQL query, judged by
// JudgePromResult (every series `value op threshold`; no data is a failure).
//
// Timestamp: the sample describes the SLI at the query's evaluation time, which Prometheus stamps
// on the result. That instant happened while the request was in flight, so on the controller's
// monotonic clock it lies in [sent, answered] by causality, whatever the two machines' wall clocks
// say. observed_at is Prometheus's stamp mapped through the wall clock read at `sent`, clamped
// into that bracket; its error is therefore at most answered - sent (the query's round trip),
// and exactly that bracket when the clocks disagree.
//
// Threading: TakeSample is const and may run concurrently with itself.

#include "common/clock.h"
#include "controller/experiment/experiment.h"
#include "controller/probes/probe_runner.h"
#include "controller/probes/prometheus_client.h"

namespace faultline::probes {

class PromQlProbe {
 public:
  // `spec` is a validated probe of kind kPrometheus; `clock` must outlive the probe.
  PromQlProbe(const experiment::Probe& spec, const Clock& clock);

  // Runs the query once. Never fails: an unreachable server, a PromQL error or an empty result
  // is a failing outcome whose detail says so. Blocks up to the probe's timeout.
  ProbeOutcome TakeSample() const;

 private:
  experiment::PrometheusProbe spec_;
  PrometheusClient client_;
  const Clock& clock_;
};

// Maps Prometheus's evaluation stamp `eval_unix_s` to the monotonic clock, given the request's
// send and answer instants (monotonic) and the wall clock read at the send (Unix ms). The result
// is clamped into [sent, answered]. Pure.
MonoTime MapEvalTime(double eval_unix_s, MonoTime sent, int64_t sent_wall_ms, MonoTime answered);

}  // namespace faultline::probes
