// The accept gate's cost on a call: GetInfo over mTLS on one warm channel, straight to gRPC on
// 127.0.0.1 vs through the gate (agent/net/accept_gate.h) to gRPC on a unix socket. Both servers
// run in this process with the agent's real service and limits. Prints median and p99 of
// `--calls` calls per path (interleaved in rounds of 100); asserts nothing.
//
//   build/bin/gate_bench [--calls N]
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/agent_service.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/journal.h"
#include "agent/net/accept_gate.h"
#include "agent/server_limits.h"
#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/clock.h"
#include "common/tls.h"

using namespace faultline;
using namespace faultline::agent;

namespace {

void Die(const std::string& what) {
  std::fprintf(stderr, "gate_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 5000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--calls") calls = std::max(100, std::atoi(argv[i + 1]));
  }
  char pattern[] = "/tmp/gate_bench.XXXXXX";
  if (::mkdtemp(pattern) == nullptr) Die("mkdtemp");
  const std::string dir = pattern;
  auto write = [&](const std::string& name, const std::string& content) {
    if (!WriteFileAtomically(dir + "/" + name, content, 0600).ok()) Die("write " + name);
  };
  CertificateAndKey ca = Must(CreateCertificateAuthority("bench CA", std::chrono::hours(1)), "ca");
  CertificateRequest agent_req{"agent", Role::kAgent};
  agent_req.ip_sans = {"127.0.0.1"};
  agent_req.server_auth = true;
  CertificateAndKey agent = Must(IssueCertificate(ca, agent_req), "agent cert");
  CertificateAndKey op = Must(IssueCertificate(ca, {"operator", Role::kOperator}), "op cert");
  write("ca.pem", ca.cert_pem);
  write("agent.pem", agent.cert_pem);
  write("agent-key.pem", agent.key_pem);
  write("op.pem", op.cert_pem);
  write("op-key.pem", op.key_pem);

  auto journal = Must(Journal::Open(dir + "/journal"), "journal");
  FaultRegistry registry;
  registry.DetectAll();
  FaultManager manager(registry, *journal, SystemClock::Instance(), FaultManagerOptions{});
  AgentService service(manager, registry, AgentIdentity{"bench", {}});
  auto server_creds =
      Must(MakeServerCredentials({dir + "/ca.pem", dir + "/agent.pem", dir + "/agent-key.pem"}),
           "server creds");
  const std::string socket_path = Must(net::PrivateSocketPath(dir + "/grpc"), "socket dir");
  int direct_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", server_creds, &direct_port);
  builder.AddListeningPort("unix:" + socket_path, server_creds);
  ApplyServerLimits(builder, ServerLimits{});
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) Die("server");
  auto gate = Must(net::AcceptGate::Start({"127.0.0.1:0", socket_path, 256}), "gate");

  auto channel_creds = Must(
      MakeChannelCredentials({dir + "/ca.pem", dir + "/op.pem", dir + "/op-key.pem"}, Role::kAgent),
      "channel creds");
  auto stub_for = [&](int port) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::Agent::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), channel_creds, args));
  };
  auto direct = stub_for(direct_port);
  auto gated = stub_for(gate->port());
  auto call = [](v1::Agent::Stub& stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AgentInfo info;
    auto start = std::chrono::steady_clock::now();
    grpc::Status s = stub.GetInfo(&ctx, v1::GetInfoRequest(), &info);
    if (!s.ok()) Die("GetInfo: " + s.error_message());
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
        .count();
  };
  for (int i = 0; i < 200; ++i) call(*direct), call(*gated);  // handshakes, warm-up
  std::vector<double> d, g;
  for (int round = 0; round < calls / 100; ++round) {
    for (int i = 0; i < 100; ++i) d.push_back(call(*direct));
    for (int i = 0; i < 100; ++i) g.push_back(call(*gated));
  }
  std::printf("GetInfo over mTLS, %zu calls per path, one warm channel each\n", d.size());
  std::printf("  direct (TCP to gRPC)        median %7.1f us  p99 %7.1f us\n", Percentile(d, 0.5),
              Percentile(d, 0.99));
  std::printf("  through the accept gate     median %7.1f us  p99 %7.1f us\n", Percentile(g, 0.5),
              Percentile(g, 0.99));
  std::printf("  gate overhead               median %+7.1f us\n",
              Percentile(g, 0.5) - Percentile(d, 0.5));
  gate->Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  manager.Shutdown();
  std::filesystem::remove_all(dir);
  return 0;
}
