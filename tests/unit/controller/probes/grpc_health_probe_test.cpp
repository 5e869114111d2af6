// The grpc_health probe against a real in-process gRPC server (127.0.0.1:0) running gRPC's own
// health service (EnableDefaultHealthCheckService), whose serving status the tests flip; over
// plaintext and over mutual TLS with development certificates.
#include "common/probes/grpc_health_probe.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/certificates.h"
#include "common/tls.h"
#include "controller/experiment/experiment.h"

namespace faultline::probes {
namespace {

using namespace std::chrono_literals;

class HealthServer {
 public:
  explicit HealthServer(std::shared_ptr<grpc::ServerCredentials> creds) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", std::move(creds), &port_);
    // gRPC refuses to start a server with no service of its own beside the health service.
    builder.RegisterCallbackGenericService(&unimplemented_);
    server_ = builder.BuildAndStart();
  }
  ~HealthServer() { server_->Shutdown(std::chrono::system_clock::now() + 1s); }
  void Set(const std::string& service, bool serving) {
    server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool started() const { return server_ != nullptr && port_ > 0; }

 private:
  int port_ = 0;
  grpc::CallbackGenericService unimplemented_;
  std::unique_ptr<grpc::Server> server_;
};

experiment::Probe Spec(const std::string& address, const std::string& service) {
  experiment::Probe p;
  p.kind = experiment::Probe::Kind::kGrpcHealth;
  p.grpc_health.address = address;
  p.grpc_health.service = service;
  p.timeout = 2s;
  return p;
}

TEST(GrpcHealthProbeTest, FollowsTheServingStatusOfTheNamedService) {
  HealthServer server(grpc::InsecureServerCredentials());
  ASSERT_TRUE(server.started());
  GrpcHealthProbe orders(Spec(server.Address(), "orders.v1.Orders"));

  // Not registered yet: gRPC's health service answers NOT_FOUND.
  ProbeOutcome unknown = orders.TakeSample();
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.detail.rfind("NOT_FOUND", 0), 0u) << unknown.detail;

  server.Set("orders.v1.Orders", true);
  ProbeOutcome serving = orders.TakeSample();
  EXPECT_TRUE(serving.ok) << serving.detail;
  EXPECT_EQ(serving.detail, "SERVING");

  server.Set("orders.v1.Orders", false);
  ProbeOutcome down = orders.TakeSample();
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.detail, "NOT_SERVING");

  server.Set("orders.v1.Orders", true);
  EXPECT_TRUE(orders.TakeSample().ok);

  // The server as a whole (service ""), which gRPC reports SERVING by default.
  EXPECT_TRUE(GrpcHealthProbe(Spec(server.Address(), "")).TakeSample().ok);
}

TEST(GrpcHealthProbeTest, UnreachableServerFailsWithinTheTimeout) {
  experiment::Probe p = Spec("127.0.0.1:1", "");
  p.timeout = 500ms;
  ProbeOutcome out = GrpcHealthProbe(p).TakeSample();
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.detail.rfind("UNAVAILABLE", 0), 0u) << out.detail;
}

TEST(GrpcHealthProbeTest, MutualTlsWithCaCertAndKey) {
  const std::string dir = ::testing::TempDir() + "/grpc-health-certs";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WriteDevCertificates(dir, {}).ok());
  auto creds = MakeServerCredentials({dir + "/ca.pem", dir + "/agent.pem", dir + "/agent-key.pem"});
  ASSERT_TRUE(creds.ok()) << creds.status().message();
  HealthServer server(*creds);
  ASSERT_TRUE(server.started());
  server.Set("kv", true);

  experiment::Probe p = Spec(server.Address(), "kv");
  p.grpc_health.tls = true;
  p.grpc_health.ca_file = dir + "/ca.pem";
  p.grpc_health.cert_file = dir + "/operator.pem";
  p.grpc_health.key_file = dir + "/operator-key.pem";
  ProbeOutcome ok = GrpcHealthProbe(p).TakeSample();
  EXPECT_TRUE(ok.ok) << ok.detail;

  // Negative controls: plaintext against the TLS port, and TLS without the client certificate
  // the server requires, both fail.
  ProbeOutcome plain = GrpcHealthProbe(Spec(server.Address(), "kv")).TakeSample();
  EXPECT_FALSE(plain.ok) << plain.detail;
  experiment::Probe no_cert = p;
  no_cert.grpc_health.cert_file.clear();
  no_cert.grpc_health.key_file.clear();
  EXPECT_FALSE(GrpcHealthProbe(no_cert).TakeSample().ok);
  // A CA file that is not there is named in the failure.
  experiment::Probe missing = p;
  missing.grpc_health.ca_file = dir + "/nope.pem";
  ProbeOutcome m = GrpcHealthProbe(missing).TakeSample();
  EXPECT_FALSE(m.ok);
  EXPECT_NE(m.detail.find("nope.pem"), std::string::npos) << m.detail;
}

}  // namespace
}  // namespace faultline::probes
