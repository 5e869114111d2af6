#pragma once
// A small client of the Prometheus HTTP API (v1): instant PromQL queries (GET /api/v1/query) and
// the list of alerts (GET /api/v1/alerts), with the answer parsed from its JSON. Used by the
// `prometheus` probe (PromQlProbe) and the `prometheus_alert` abort condition (AlertWatch).
//
// Threading: every function is thread-safe; PrometheusClient holds no mutable state.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "controller/experiment/experiment.h"

namespace faultline::probes {

// One series of an instant-vector result, or the single value of a scalar result.
struct PromSeries {
  std::string labels;  // the series' labels as PromQL prints them: {job="orders"}; "" for a scalar
  double value = 0;    // NaN and ±Inf as Prometheus sent them
};

// The data of a successful instant query.
struct PromQueryResult {
  std::string result_type;  // "vector" or "scalar" (other types are an error when parsing)
  std::vector<PromSeries> series;
  // The evaluation instant Prometheus stamped on the result (Unix seconds). Every sample of an
  // instant query carries the query's evaluation time; unset for an empty vector.
  std::optional<double> eval_unix_s;
};

// One alert of /api/v1/alerts.
struct PromAlert {
  std::string name;   // the alertname label
  std::string state;  // "pending" or "firing" (inactive alerts are not listed by Prometheus)
};

// Parses the body of /api/v1/query. INVALID_ARGUMENT for a body that is not the API's JSON or a
// result that is neither a vector nor a scalar ("matrix": a range selector outside a function);
// FAILED_PRECONDITION carrying Prometheus's own errorType and error for status "error". Pure.
Result<PromQueryResult> ParsePromQueryResponse(std::string_view body);

// Parses the body of /api/v1/alerts; errors as ParsePromQueryResponse. Pure.
Result<std::vector<PromAlert>> ParsePromAlertsResponse(std::string_view body);

// `lhs op rhs`. A NaN on either side satisfies only !=, as in IEEE 754 (and PromQL). Pure.
bool Compare(double lhs, experiment::CompareOp op, double rhs);

// What one query result says about the SLI: ok when it has at least one series and every series
// satisfies `value op threshold`; `detail` names the value (and the first series that fails).
// An empty result is a failure ("no data"), so a query whose series vanish never passes. Pure.
struct PromVerdict {
  bool ok = false;
  std::string detail;
};
PromVerdict JudgePromResult(const PromQueryResult& result, experiment::CompareOp op,
                            double threshold);

// The HTTP side: one libcurl request per call, no connection reuse, bounded by `timeout`, the
// body capped at 4 MiB. Precondition: curl_global_init has run (probes::InitProbes).
class PrometheusClient {
 public:
  // `base_url`: "http://host:9090" (no trailing slash), as the parser leaves it.
  PrometheusClient(std::string base_url, Duration timeout);

  // Runs `promql` as an instant query evaluated at the server's current time (no `time`
  // parameter, so the evaluation happens while the request is in flight). UNAVAILABLE when the
  // server cannot be reached or times out; the parse errors above otherwise.
  Result<PromQueryResult> Query(const std::string& promql) const;

  // The alerts Prometheus currently holds (pending and firing). Errors as Query.
  Result<std::vector<PromAlert>> Alerts() const;

 private:
  Result<std::string> Get(const std::string& path_and_query) const;

  std::string base_url_;
  Duration timeout_;
};

}  // namespace faultline::probes
