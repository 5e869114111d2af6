#include "controller/probes/prometheus_client.h"

#include <curl/curl.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/metrics.h"

namespace faultline::probes {

namespace {

using experiment::CompareOp;
using json = nlohmann::json;

constexpr size_t kMaxBodyBytes = 4 << 20;

struct Body {
  std::string text;
  bool truncated = false;
};

size_t AppendCapped(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<Body*>(user);
  if (body->text.size() + size * n > kMaxBodyBytes) {
    body->truncated = true;
    return 0;  // aborts the transfer: CURLE_WRITE_ERROR
  }
  body->text.append(data, size * n);
  return size * n;
}

// A sample value: Prometheus sends it as a string ("0.5", "NaN", "+Inf").
std::optional<double> SampleValue(const json& pair, double* ts) {
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_string()) {
    return std::nullopt;
  }
  *ts = pair[0].get<double>();
  const std::string s = pair[1].get<std::string>();
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == nullptr || *end != '\0') return std::nullopt;
  return v;
}

std::string LabelsText(const json& metric) {
  if (!metric.is_object() || metric.empty()) return "";  // an aggregate: nothing to name
  std::string out = "{";
  // __name__ first, as PromQL prints it: name{labels}.
  std::string name;
  for (const auto& [k, v] : metric.items()) {
    if (!v.is_string()) continue;
    if (k == "__name__") {
      name = v.get<std::string>();
      continue;
    }
    if (out.size() > 1) out += ",";
    out += k + "=\"" + metrics::EscapeLabelValue(v.get<std::string>()) + "\"";
  }
  return out.size() > 1 ? name + out + "}" : name;
}

// The "data" member of a successful API answer, or the answer's error.
Result<json> Data(std::string_view body, json* doc) {
  *doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc->is_discarded() || !doc->is_object()) {
    std::string head(body.substr(0, 120));
    return InvalidArgument("the answer is not the Prometheus API's JSON: " + head);
  }
  const auto status = doc->find("status");
  if (status == doc->end() || !status->is_string()) {
    return InvalidArgument("the answer has no status");
  }
  if (*status != "success") {
    std::string type = doc->value("errorType", std::string("error"));
    std::string error = doc->value("error", std::string("(no message)"));
    return FailedPrecondition("prometheus: " + type + ": " + error);
  }
  const auto data = doc->find("data");
  if (data == doc->end()) return InvalidArgument("the answer has no data");
  return *data;
}

std::string FormatNumber(double v) { return metrics::FormatValue(v); }

}  // namespace

Result<PromQueryResult> ParsePromQueryResponse(std::string_view body) {
  json doc;
  auto data = Data(body, &doc);
  if (!data.ok()) return data.status();
  if (!data->is_object() || !data->contains("resultType") || !(*data)["resultType"].is_string()) {
    return InvalidArgument("the answer's data has no resultType");
  }
  PromQueryResult out;
  out.result_type = (*data)["resultType"].get<std::string>();
  const json& result = (*data)["result"];
  double ts = 0;
  if (out.result_type == "scalar") {
    auto v = SampleValue(result, &ts);
    if (!v) return InvalidArgument("malformed scalar result");
    out.series.push_back({"", *v});
    out.eval_unix_s = ts;
    return out;
  }
  if (out.result_type != "vector") {
    return InvalidArgument("the query gives a " + out.result_type +
                           " result; a probe needs an instant vector or a scalar (wrap a range "
                           "selector in a function such as rate())");
  }
  if (!result.is_array()) return InvalidArgument("malformed vector result");
  for (const json& s : result) {
    if (!s.is_object() || !s.contains("value")) return InvalidArgument("malformed vector sample");
    auto v = SampleValue(s["value"], &ts);
    if (!v) return InvalidArgument("malformed vector sample value");
    out.series.push_back({LabelsText(s.value("metric", json::object())), *v});
    out.eval_unix_s = ts;
  }
  return out;
}

Result<std::vector<PromAlert>> ParsePromAlertsResponse(std::string_view body) {
  json doc;
  auto data = Data(body, &doc);
  if (!data.ok()) return data.status();
  if (!data->is_object() || !data->contains("alerts") || !(*data)["alerts"].is_array()) {
    return InvalidArgument("the answer's data has no alerts list");
  }
  std::vector<PromAlert> out;
  for (const json& a : (*data)["alerts"]) {
    if (!a.is_object()) continue;
    PromAlert alert;
    if (auto labels = a.find("labels"); labels != a.end() && labels->is_object()) {
      alert.name = labels->value("alertname", std::string());
    }
    alert.state = a.value("state", std::string());
    out.push_back(std::move(alert));
  }
  return out;
}

bool Compare(double lhs, CompareOp op, double rhs) {
  switch (op) {
    case CompareOp::kLt:
      return lhs < rhs;
    case CompareOp::kLe:
      return lhs <= rhs;
    case CompareOp::kGt:
      return lhs > rhs;
    case CompareOp::kGe:
      return lhs >= rhs;
    case CompareOp::kEq:
      return lhs == rhs;
    case CompareOp::kNe:
      return lhs != rhs;
  }
  return false;
}

PromVerdict JudgePromResult(const PromQueryResult& result, CompareOp op, double threshold) {
  PromVerdict v;
  const std::string want =
      std::string(" ") + experiment::CompareOpName(op) + " " + FormatNumber(threshold);
  if (result.series.empty()) {
    v.detail = "no data: the query returned no series";
    return v;
  }
  for (const PromSeries& s : result.series) {
    if (!Compare(s.value, op, threshold)) {
      v.detail = (s.labels.empty() ? std::string() : s.labels + " ") + FormatNumber(s.value) +
                 ", not" + want;
      if (result.series.size() > 1) {
        v.detail += " (" + std::to_string(result.series.size()) + " series)";
      }
      return v;
    }
  }
  v.ok = true;
  v.detail = FormatNumber(result.series.front().value) + want;
  if (result.series.size() > 1) {
    v.detail += " (all " + std::to_string(result.series.size()) + " series)";
  }
  return v;
}

PrometheusClient::PrometheusClient(std::string base_url, Duration timeout)
    : base_url_(std::move(base_url)), timeout_(timeout) {}

Result<std::string> PrometheusClient::Get(const std::string& path_and_query) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal("curl_easy_init failed");
  Body body;
  const std::string url = base_url_ + path_and_query;
  auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count();
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, AppendCapped);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "faultline-probe/1");
  CURLcode rc = curl_easy_perform(curl.get());
  if (body.truncated) return InvalidArgument("the answer is larger than 4 MiB");
  if (rc != CURLE_OK) return Unavailable(std::string("prometheus: ") + curl_easy_strerror(rc));
  // Error answers (400 bad_data, 422 execution, 503 unavailable) carry the API's JSON too, with
  // the reason; the parser reports it.
  return body.text;
}

Result<PromQueryResult> PrometheusClient::Query(const std::string& promql) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal("curl_easy_init failed");
  char* escaped = curl_easy_escape(curl.get(), promql.data(), static_cast<int>(promql.size()));
  if (escaped == nullptr) return Internal("cannot URL-encode the query");
  std::string q(escaped);
  curl_free(escaped);
  // Prometheus's own evaluation timeout, so a heavy query gives its error rather than ours.
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count();
  auto body = Get("/api/v1/query?query=" + q + "&timeout=" + std::to_string(ms) + "ms");
  if (!body.ok()) return body.status();
  return ParsePromQueryResponse(*body);
}

Result<std::vector<PromAlert>> PrometheusClient::Alerts() const {
  auto body = Get("/api/v1/alerts");
  if (!body.ok()) return body.status();
  return ParsePromAlertsResponse(*body);
}

}  // namespace faultline::probes
