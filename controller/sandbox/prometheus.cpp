// The sandbox's Prometheus (`sandbox up --prometheus`): its configuration, alerting rules and
// argv. It runs on the dns host, outside the application's and databases' hosts, so the faults
// the example experiments inject there do not blind it.
#include <httplib.h>

#include <filesystem>

#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox {

std::string SandboxPrometheusUrl() {
  return "http://" + FindSandboxHostByRole("dns")->address + ":" + std::to_string(kPrometheusPort);
}

namespace internal {

namespace {

std::string Target(const SandboxHost& h, int port) {
  return "\"" + h.address + ":" + std::to_string(port) + "\"";
}

}  // namespace

std::string PrometheusDir() { return std::string(kRunDir) + "/prometheus"; }

Status WritePrometheusConfig(bool agents) {
  std::error_code ec;
  std::filesystem::create_directories(PrometheusDir() + "/data", ec);
  if (ec) return Internal("cannot create " + PrometheusDir() + "/data: " + ec.message());
  const SandboxHost& app = *FindSandboxHostByRole("app");
  const SandboxHost& east = *FindSandboxHostByRole("db", kPrimaryRegion);
  const SandboxHost& west = *FindSandboxHostByRole("db", kSecondaryRegion);
  // Scrape and evaluate every second: a PromQL probe then sees a change within about two
  // seconds (one scrape plus one evaluation), which is what a recovery measurement can resolve.
  std::string config =
      "# Written by `faultline sandbox up --prometheus`; rewritten on every up.\n"
      "global:\n"
      "  scrape_interval: 1s\n"
      "  scrape_timeout: 900ms\n"
      "  evaluation_interval: 1s\n"
      "rule_files: [\"" +
      PrometheusDir() +
      "/rules.yml\"]\n"
      "scrape_configs:\n"
      "  - job_name: orders\n"
      "    static_configs: [{targets: [" +
      Target(app, kOrdersPort) +
      "]}]\n"
      "  - job_name: kv\n"
      "    static_configs: [{targets: [" +
      Target(east, kKvPort) + ", " + Target(west, kKvPort) + "]}]\n";
  if (agents) {
    std::string targets;
    for (const auto& h : SandboxHosts()) {
      targets += (targets.empty() ? "" : ", ") + Target(h, kAgentMetricsPort);
    }
    config += "  - job_name: faultline-agent\n    static_configs: [{targets: [" + targets + "]}]\n";
  }
  // The sample alert of the prometheus_alert abort condition: more than half of the orders
  // answers over the last 5 s are errors. `for: 0s` fires on the first evaluation that sees it.
  const std::string rules =
      "groups:\n"
      "  - name: faultline-sandbox\n"
      "    interval: 1s\n"
      "    rules:\n"
      "      - alert: OrdersErrorRatioHigh\n"
      "        expr: >-\n"
      "          sum(rate(orders_requests_total{outcome=\"error\"}[5s]))\n"
      "          / sum(rate(orders_requests_total[5s])) > 0.5\n"
      "        for: 0s\n"
      "        labels: {severity: page}\n"
      "        annotations: {summary: \"more than half of the orders answers are errors\"}\n";
  if (Status s = WriteFile(PrometheusDir() + "/prometheus.yml", config); !s.ok()) return s;
  return WriteFile(PrometheusDir() + "/rules.yml", rules);
}

std::vector<std::string> PrometheusArgv(const std::string& program) {
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  return {program,
          "--config.file=" + PrometheusDir() + "/prometheus.yml",
          "--storage.tsdb.path=" + PrometheusDir() + "/data",
          "--storage.tsdb.retention.time=1d",
          "--web.listen-address=" + dns.address + ":" + std::to_string(kPrometheusPort),
          "--log.level=warn"};
}

bool HttpReady(const std::string& url, std::string* why) {
  // url: http://HOST:PORT/PATH
  const size_t path_at = url.find('/', url.find("://") + 3);
  httplib::Client client(url.substr(0, path_at));
  client.set_connection_timeout(std::chrono::seconds(1));
  client.set_read_timeout(std::chrono::seconds(1));
  auto res = client.Get(path_at == std::string::npos ? "/" : url.substr(path_at));
  if (!res) {
    *why = "GET " + url + ": " + httplib::to_string(res.error());
    return false;
  }
  if (res->status != 200) {
    *why = "GET " + url + " answered " + std::to_string(res->status);
    return false;
  }
  return true;
}

}  // namespace internal
}  // namespace faultline::sandbox
