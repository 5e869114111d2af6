// faultline-sample-kv: the sandbox's stand-in for a regional DynamoDB endpoint.
//
//   GET /kv/<table>/<key>  -> 200 {"table":..,"key":..,"value":..,"region":..}
//   GET /healthz           -> 200 ok
//   GET /metrics           -> Prometheus text: kv_requests_total{region} (GET /kv answers)
//
// Every key exists: its value is derived from table and key, so both regions serve the same item
// (a global table) and only "region" tells which replica answered.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/metrics.h"
#include "common/metrics_server.h"
#include "controller/sandbox/services/service_support.h"

int main(int argc, char** argv) {
  CLI::App app{"faultline-sample-kv: a tiny regional key-value HTTP service for the sandbox"};
  std::string listen = "0.0.0.0:8000";
  std::string region = "us-east-1";
  std::string ready_file;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--region", region, "region reported in every answer")->capture_default_str();
  app.add_option("--ready-file", ready_file,
                 "file written (with the bound port) once the server accepts connections");
  CLI11_PARSE(app, argc, argv);

  auto address = faultline::sandbox::ParseListenAddress(listen);
  if (!address) {
    std::fprintf(stderr, "faultline-sample-kv: --listen must be HOST:PORT, got '%s'\n",
                 listen.c_str());
    return 2;
  }

  faultline::metrics::Registry metrics;
  metrics.Declare("kv_requests_total", faultline::metrics::MetricType::kCounter,
                  "Answers to GET /kv/<table>/<key>.");
  metrics.Increment("kv_requests_total", {{"region", region}}, 0);
  httplib::Server server;
  server.Get(R"(/kv/([^/]+)/([^/]+))", [&region, &metrics](const httplib::Request& req,
                                                           httplib::Response& res) {
    metrics.Increment("kv_requests_total", {{"region", region}});
    const std::string table = req.matches[1];
    const std::string key = req.matches[2];
    nlohmann::json body = {
        {"table", table}, {"key", key}, {"value", table + "-item-" + key}, {"region", region}};
    res.set_content(body.dump(), "application/json");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.Render(), faultline::metrics::kTextContentType);
  });

  return faultline::sandbox::ServeUntilSignalled(
      server, *address, ready_file, "faultline-sample-kv",
      "region " + region + " listening on " + address->host);
}
