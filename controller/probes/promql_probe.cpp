#include "controller/probes/promql_probe.h"

#include <algorithm>
#include <cmath>

namespace faultline::probes {

PromQlProbe::PromQlProbe(const experiment::Probe& spec, const Clock& clock)
    : spec_(spec.prometheus), client_(spec.prometheus.url, spec.timeout), clock_(clock) {}

MonoTime MapEvalTime(double eval_unix_s, MonoTime sent, int64_t sent_wall_ms, MonoTime answered) {
  if (!std::isfinite(eval_unix_s) || answered <= sent) return sent;
  // Clamped in double first, so a wildly wrong clock cannot overflow the conversion.
  const double offset_ns = (eval_unix_s * 1000.0 - static_cast<double>(sent_wall_ms)) * 1e6;
  const double span_ns = static_cast<double>((answered - sent).count());
  return sent + std::chrono::nanoseconds(static_cast<int64_t>(std::clamp(offset_ns, 0.0, span_ns)));
}

ProbeOutcome PromQlProbe::TakeSample() const {
  ProbeOutcome out;
  const MonoTime sent = clock_.Now();
  const int64_t sent_wall_ms = clock_.WallUnixMs();
  auto result = client_.Query(spec_.query);
  const MonoTime answered = clock_.Now();
  out.latency = answered - sent;
  if (!result.ok()) {
    out.detail = result.status().message();
    return out;
  }
  if (result->eval_unix_s) {
    out.observed_at = MapEvalTime(*result->eval_unix_s, sent, sent_wall_ms, answered);
  }
  PromVerdict v = JudgePromResult(*result, spec_.op, spec_.value);
  out.ok = v.ok;
  out.detail = std::move(v.detail);
  return out;
}

}  // namespace faultline::probes
