// faultline-sample-kv: the sandbox's stand-in for a regional DynamoDB endpoint.
//
//   GET /kv/<table>/<key>  -> 200 {"table":..,"key":..,"value":..,"region":..}
//   GET /healthz           -> 200 ok
//   GET /metrics           -> Prometheus text: kv_requests_total{region} (GET /kv answers)
//
// With --grpc-health-listen HOST:PORT it also serves gRPC's standard health service
// (grpc.health.v1.Health, plaintext), SERVING for the server as a whole ("") and for the service
// "faultline.sample.KeyValue", as a real gRPC backend would: what a grpc_health probe checks.
//
// Every key exists: its value is derived from table and key, so both regions serve the same item
// (a global table) and only "region" tells which replica answered.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
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
  std::string grpc_health_listen;
  app.add_option("--grpc-health-listen", grpc_health_listen,
                 "HOST:PORT to serve grpc.health.v1 on (plaintext); unset: no gRPC server");
  CLI11_PARSE(app, argc, argv);

  auto address = faultline::sandbox::ParseListenAddress(listen);
  if (!address) {
    std::fprintf(stderr, "faultline-sample-kv: --listen must be HOST:PORT, got '%s'\n",
                 listen.c_str());
    return 2;
  }

  // The gRPC health server listens before the ready file is written (BuildAndStart binds), so
  // "ready" covers it too.
  grpc::CallbackGenericService unimplemented;  // gRPC starts no server with no service at all
  std::unique_ptr<grpc::Server> grpc_server;
  if (!grpc_health_listen.empty()) {
    if (!faultline::sandbox::ParseListenAddress(grpc_health_listen)) {
      std::fprintf(stderr,
                   "faultline-sample-kv: --grpc-health-listen must be HOST:PORT, got '%s'\n",
                   grpc_health_listen.c_str());
      return 2;
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int bound = 0;
    builder.AddListeningPort(grpc_health_listen, grpc::InsecureServerCredentials(), &bound);
    builder.RegisterCallbackGenericService(&unimplemented);
    grpc_server = builder.BuildAndStart();
    if (!grpc_server || bound == 0) {
      std::fprintf(stderr, "faultline-sample-kv: cannot serve gRPC health on %s\n",
                   grpc_health_listen.c_str());
      return 1;
    }
    grpc_server->GetHealthCheckService()->SetServingStatus(true);
    grpc_server->GetHealthCheckService()->SetServingStatus("faultline.sample.KeyValue", true);
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

  int rc = faultline::sandbox::ServeUntilSignalled(
      server, *address, ready_file, "faultline-sample-kv",
      "region " + region + " listening on " + address->host);
  if (grpc_server)
    grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return rc;
}
