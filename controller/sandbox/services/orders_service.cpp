// faultline-sample-orders: the sandbox's application under test.
//
//   GET /orders/<id> -> fetches http://dynamodb.<region>.sandbox.test:8000/kv/orders/<id>
//                       200 {"order_id":..,"item":{..},"region":..} or 503 {"error":..}
//   GET /status      -> {"region","primary_region","secondary_region","failover",
//                        "failover_threshold","consecutive_failures","failed_over_at_monotonic_ns"}
//   GET /healthz     -> 200 ok
//   GET /metrics     -> Prometheus text: orders_requests_total{outcome="ok"|"error"} (answers to
//                       GET /orders/<id>: 200 is ok, 503 is error), the histogram
//                       orders_request_duration_seconds{outcome} and orders_failed_over (0|1)
//
// With --retries N, a failed dependency call is tried again at once, up to N more times, before
// it counts as a failure.
// With --fail-delay-ms N, a failing request is answered (503) only N ms after its failure was
// decided: a service whose failing requests are slow (the failure and the failover happen on
// time; only the answer is late), to test that measurement stays honest with slow failures.
// With --failover auto, after N consecutive dependency failures it switches to the secondary
// region for good, retries the failing request there at once, and prints one line on stdout:
//   FAILOVER monotonic_ns=<ns> wall_unix_ms=<ms> from=<region> to=<region> after_failures=<n>
// That line is the ground truth that measured recovery times are compared with.
#include <curl/curl.h>
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "controller/sandbox/services/service_support.h"

namespace {

struct Settings {
  std::string primary_region = "us-east-1";
  std::string secondary_region = "us-west-2";
  bool failover_auto = true;
  int failover_threshold = 3;
  // "{region}" is replaced by the region in use.
  std::string endpoint = "http://dynamodb.{region}.sandbox.test:8000";
  long timeout_ms = 500;
  // Extra attempts of a failed dependency call in the same region, at once (0 = none).
  int retries = 0;
  // How long a failure is held before it is answered (0 = at once).
  long fail_delay_ms = 0;
};

struct FetchResult {
  bool ok = false;
  std::string body;   // the dependency's answer when ok
  std::string error;  // why not, for the 503 body
};

size_t AppendToString(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::string EndpointFor(const Settings& s, const std::string& region) {
  std::string url = s.endpoint;
  auto at = url.find("{region}");
  if (at != std::string::npos) url.replace(at, 8, region);
  return url;
}

std::string HostOf(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// A new easy handle per request and no DNS cache, so every request resolves the name again
// through the host's resolver: a DNS fault bites on the next request, as it did for real clients.
FetchResult Fetch(const Settings& s, const std::string& region, const std::string& id) {
  const std::string base = EndpointFor(s, region);
  const std::string url = base + "/kv/orders/" + id;
  FetchResult r;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    r.error = "cannot create an HTTP client handle";
    return r;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  long status = 0;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
  curl_easy_setopt(curl, CURLOPT_IPRESOLVE, CURL_IPRESOLVE_V4);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, s.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, s.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // many threads: no SIGALRM-based timeouts
  curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
  // Without this, curl_easy_cleanup joins a resolver thread still stuck in getaddrinfo, so a
  // dropped DNS query would hold the request for glibc's full timeout (~10 s), not timeout_ms.
  curl_easy_setopt(curl, CURLOPT_QUICK_EXIT, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);

  if (rc == CURLE_COULDNT_RESOLVE_HOST) {
    r.error = "could not resolve " + HostOf(url);
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    r.error = "timed out after " + std::to_string(s.timeout_ms) + " ms calling " + base +
              (errbuf[0] ? std::string(" (") + errbuf + ")" : "");
  } else if (rc != CURLE_OK) {
    r.error = std::string("request to ") + base +
              " failed: " + (errbuf[0] ? errbuf : curl_easy_strerror(rc));
  } else if (status != 200) {
    r.error = base + " answered HTTP " + std::to_string(status);
  } else {
    r.ok = true;
    return r;
  }
  r.body.clear();
  return r;
}

// The service's shared, mutex-guarded failover state.
class FailoverState {
 public:
  explicit FailoverState(const Settings& s) : settings_(s), region_(s.primary_region) {}

  std::string Region() {
    std::lock_guard lock(mu_);
    return region_;
  }

  void RecordSuccess(const std::string& region) {
    std::lock_guard lock(mu_);
    if (region == region_) consecutive_failures_ = 0;
  }

  // Counts a failure against `region` and returns the region to retry on when this failure
  // triggers the failover (exactly once over the process lifetime), nullopt otherwise.
  std::optional<std::string> RecordFailure(const std::string& region) {
    std::lock_guard lock(mu_);
    // A failure of a request that started before the switch says nothing about the new region.
    if (region != region_) return region_;
    ++consecutive_failures_;
    if (!settings_.failover_auto || failed_over_at_ns_ || region_ == settings_.secondary_region ||
        consecutive_failures_ < settings_.failover_threshold) {
      return std::nullopt;
    }
    auto& clock = faultline::SystemClock::Instance();
    failed_over_at_ns_ = clock.Now().count();
    std::printf("FAILOVER monotonic_ns=%lld wall_unix_ms=%lld from=%s to=%s after_failures=%d\n",
                static_cast<long long>(*failed_over_at_ns_),
                static_cast<long long>(clock.WallUnixMs()), region_.c_str(),
                settings_.secondary_region.c_str(), consecutive_failures_);
    std::fflush(stdout);
    region_ = settings_.secondary_region;
    consecutive_failures_ = 0;
    return region_;
  }

  nlohmann::json ToJson() {
    std::lock_guard lock(mu_);
    return {{"region", region_},
            {"primary_region", settings_.primary_region},
            {"secondary_region", settings_.secondary_region},
            {"failover", settings_.failover_auto ? "auto" : "off"},
            {"failover_threshold", settings_.failover_threshold},
            {"consecutive_failures", consecutive_failures_},
            {"failed_over_at_monotonic_ns",
             failed_over_at_ns_ ? nlohmann::json(*failed_over_at_ns_) : nlohmann::json(nullptr)}};
  }

 private:
  const Settings settings_;
  std::mutex mu_;
  std::string region_;
  int consecutive_failures_ = 0;
  std::optional<int64_t> failed_over_at_ns_;
};

void Reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "faultline-sample-orders: the sandbox's orders service (resolves per request, "
      "fails over between regions)"};
  Settings settings;
  std::string listen = "0.0.0.0:8080";
  std::string failover = "auto";
  std::string ready_file;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--region", settings.primary_region, "primary region")->capture_default_str();
  app.add_option("--secondary-region", settings.secondary_region, "region to fail over to")
      ->capture_default_str();
  app.add_option("--failover", failover, "auto: fail over after N failures; off: never")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  app.add_option("--failover-threshold", settings.failover_threshold,
                 "consecutive dependency failures that trigger the failover")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--endpoint", settings.endpoint,
                 "dependency base URL; {region} is replaced by the region in use")
      ->capture_default_str();
  app.add_option("--timeout-ms", settings.timeout_ms,
                 "connect and total timeout of one dependency call, in milliseconds")
      ->check(CLI::Range(1L, 600000L))
      ->capture_default_str();
  app.add_option("--retries", settings.retries,
                 "extra attempts of a failed dependency call before it counts as a failure")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--fail-delay-ms", settings.fail_delay_ms,
                 "wait this long before answering a failing request (503)")
      ->check(CLI::Range(0L, 600000L))
      ->capture_default_str();
  app.add_option("--ready-file", ready_file,
                 "file written (with the bound port) once the server accepts connections");
  CLI11_PARSE(app, argc, argv);
  settings.failover_auto = failover == "auto";

  auto address = faultline::sandbox::ParseListenAddress(listen);
  if (!address) {
    std::fprintf(stderr, "faultline-sample-orders: --listen must be HOST:PORT, got '%s'\n",
                 listen.c_str());
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fprintf(stderr, "faultline-sample-orders: curl_global_init failed\n");
    return 1;
  }

  FailoverState state(settings);
  faultline::metrics::Registry metrics;
  metrics.Declare("orders_requests_total", faultline::metrics::MetricType::kCounter,
                  "Answers to GET /orders/<id> by outcome: ok (200) or error (503).");
  metrics.DeclareHistogram("orders_request_duration_seconds",
                           "Time to answer GET /orders/<id>, by outcome.",
                           {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  metrics.Declare("orders_failed_over", faultline::metrics::MetricType::kGauge,
                  "1 once the service has failed over to the secondary region.");
  // Both outcomes exist from the start, so rate() sees the first error as an increase.
  metrics.Increment("orders_requests_total", {{"outcome", "ok"}}, 0);
  metrics.Increment("orders_requests_total", {{"outcome", "error"}}, 0);
  metrics.AddCollector([&state, &settings](faultline::metrics::Registry& r) {
    r.Set("orders_failed_over", {}, state.Region() == settings.primary_region ? 0.0 : 1.0);
  });
  httplib::Server server;
  server.Get(R"(/orders/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const auto started = std::chrono::steady_clock::now();
    auto seconds = [&started] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    std::string region = state.Region();
    FetchResult fetched = Fetch(settings, region, id);
    for (int attempt = 0; attempt < settings.retries && !fetched.ok; ++attempt) {
      std::fprintf(stderr, "orders: %s (retrying)\n", fetched.error.c_str());
      fetched = Fetch(settings, region, id);
    }
    if (!fetched.ok) {
      std::fprintf(stderr, "orders: %s\n", fetched.error.c_str());
      if (auto retry_region = state.RecordFailure(region)) {
        region = *retry_region;
        fetched = Fetch(settings, region, id);
        if (!fetched.ok) {
          std::fprintf(stderr, "orders: retry: %s\n", fetched.error.c_str());
          state.RecordFailure(region);
        }
      }
    }
    if (!fetched.ok) {
      if (settings.fail_delay_ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(settings.fail_delay_ms));
      }
      metrics.Increment("orders_requests_total", {{"outcome", "error"}});
      metrics.Observe("orders_request_duration_seconds", {{"outcome", "error"}}, seconds());
      Reply(res, 503, {{"error", fetched.error}, {"region", region}});
      return;
    }
    metrics.Increment("orders_requests_total", {{"outcome", "ok"}});
    metrics.Observe("orders_request_duration_seconds", {{"outcome", "ok"}}, seconds());
    state.RecordSuccess(region);
    nlohmann::json item = nlohmann::json::parse(fetched.body, nullptr, /*allow_exceptions=*/false);
    if (item.is_discarded()) item = fetched.body;
    Reply(res, 200, {{"order_id", id}, {"item", item}, {"region", region}});
  });
  server.Get("/status", [&](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, state.ToJson());
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.Render(), faultline::metrics::kTextContentType);
  });

  int rc = faultline::sandbox::ServeUntilSignalled(
      server, *address, ready_file, "faultline-sample-orders",
      "primary " + settings.primary_region + ", secondary " + settings.secondary_region +
          ", failover " + failover + " after " + std::to_string(settings.failover_threshold) +
          " failures, listening on " + address->host);
  curl_global_cleanup();
  return rc;
}
