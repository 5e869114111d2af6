// faultline-controller: the long-running controller service (agent registry, runs submitted
// through it, fleet-wide fault list, halt-all). See controller/daemon/controller_service.h.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>

#include "common/certificates.h"
#include "common/duration.h"
#include "common/logging.h"
#include "common/tls.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/controller_service.h"
#include "controller/probes/probe_runner.h"

namespace {

using faultline::Duration;
using faultline::Result;
using faultline::Status;

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

struct Flags {
  std::string listen;
  bool insecure = false;
  std::string tls_ca, tls_cert, tls_key;
  uint32_t tls_refresh_s = 10;
  std::string heartbeat = "1s";
  std::string fanout_deadline = "5s";
  std::string ready_file;
  std::string log_level = "info";
};

Result<Duration> PositiveDuration(const std::string& flag, const std::string& value) {
  auto d = faultline::ParseDuration(value);
  if (!d.ok())
    return faultline::InvalidArgument(flag + " '" + value + "': " + d.status().message());
  if (d->count() <= 0) return faultline::InvalidArgument(flag + " must be greater than 0");
  return *d;
}

int Run(const Flags& flags, const sigset_t& stop_signals) {
  using namespace faultline;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (flags.insecure) {
    if (!flags.tls_ca.empty() || !flags.tls_cert.empty() || !flags.tls_key.empty()) {
      spdlog::error("--insecure and --tls-* exclude each other: choose one");
      return kExitUsage;
    }
    if (Status s = CheckPlaintextAllowed(flags.listen); !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
    credentials = grpc::InsecureServerCredentials();
  } else {
    if (flags.tls_ca.empty() || flags.tls_cert.empty() || flags.tls_key.empty()) {
      spdlog::error(
          "mTLS is required: pass --tls-ca, --tls-cert and --tls-key (`faultline certs init DIR` "
          "makes development ones), or --insecure on a loopback or sandbox address");
      return kExitUsage;
    }
    auto made =
        MakeServerCredentials(TlsFiles{flags.tls_ca, flags.tls_cert, flags.tls_key},
                              std::chrono::seconds(std::max<uint32_t>(1, flags.tls_refresh_s)));
    if (!made.ok()) {
      spdlog::error("{}", made.status().message());
      return kExitUsage;
    }
    credentials = *made;
  }
  auto heartbeat = PositiveDuration("--heartbeat", flags.heartbeat);
  auto fanout = PositiveDuration("--fanout-deadline", flags.fanout_deadline);
  for (const Status& s : {heartbeat.status(), fanout.status()}) {
    if (!s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());
  probes::InitProbes();

  daemon::AgentRegistryOptions registry_options;
  registry_options.heartbeat_interval = *heartbeat;
  daemon::AgentRegistry registry(registry_options);
  daemon::ControllerServiceOptions service_options;
  service_options.plaintext_allow_all = flags.insecure;
  service_options.fanout_deadline = *fanout;
  auto service = std::make_unique<daemon::ControllerService>(registry, service_options);

  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(flags.listen, credentials, &port);
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::error("cannot listen on {}", flags.listen);
    return kExitFailure;
  }
  const std::string address = HostOf(flags.listen) + ":" + std::to_string(port);
  spdlog::info("faultline-controller listening on {} ({}), heartbeat {}", address,
               flags.insecure ? "PLAINTEXT, --insecure" : "mTLS, client certificates required",
               FormatDuration(*heartbeat));
  if (!flags.ready_file.empty()) {
    if (Status s = WriteFileAtomically(flags.ready_file, address + "\n", 0644); !s.ok()) {
      spdlog::error("{}", s.message());
      server->Shutdown();
      return kExitFailure;
    }
  }
  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  spdlog::info("received {}: cancelling runs (their faults are reverted) and stopping",
               strsignal(sig));
  // Runs first, while agents are still attached, so their faults are reverted on the way out.
  service.reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Flags flags;
  CLI::App app{"faultline-controller: agent registry, runs, fleet-wide halt for Faultline"};
  app.add_option("--listen", flags.listen, "gRPC address agents and operators dial, HOST:PORT")
      ->required();
  app.add_flag("--insecure", flags.insecure,
               "plaintext without authentication; only on loopback or a sandbox address");
  app.add_option("--tls-ca", flags.tls_ca, "CA bundle (PEM) that signs client certificates");
  app.add_option("--tls-cert", flags.tls_cert, "this controller's certificate (PEM)");
  app.add_option("--tls-key", flags.tls_key, "this controller's private key (PEM)");
  app.add_option("--tls-refresh", flags.tls_refresh_s, "seconds between re-reads of the TLS files")
      ->capture_default_str();
  app.add_option("--heartbeat", flags.heartbeat,
                 "agents send a heartbeat this often; 3 missed = the agent is gone")
      ->capture_default_str();
  app.add_option("--fanout-deadline", flags.fanout_deadline,
                 "per-agent deadline of halt and of the fleet fault list")
      ->capture_default_str();
  app.add_option("--ready-file", flags.ready_file,
                 "written (atomically) with the listening address once serving");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  faultline::SetupLogging(flags.log_level, "faultline-controller");
  return Run(flags, stop_signals);
}
