// faultline-agent: the daemon that applies and reverts faults on one test host.
//
// Start order: logging → registry (each kind folder's module, BuiltinBackendModules, makes its
// backend from its own flags; main registers them explicitly) → capability
// detection → recovery (journal replay, then the faultline_* table sweep) → gRPC server → ready
// file → wait for SIGINT/SIGTERM, which stops the server and reverts every active fault.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_metrics.h"
#include "agent/agent_service.h"
#include "agent/backend_module.h"
#include "agent/controller_link.h"
#include "agent/dry_run_backend.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/guard.h"
#include "agent/host/deadman_switch.h"
#include "agent/host/death_guard.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nft_ruleset.h"
#include "agent/journal.h"
#include "agent/net/accept_gate.h"
#include "agent/netns_backends.h"
#include "agent/probe_streams.h"
#include "agent/server_limits.h"
#include "agent/workloads/workload_resolver.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/labels.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "common/probes/probe_runner.h"
#include "common/signals.h"
#include "common/tls.h"

namespace {

using faultline::Result;
using faultline::Status;

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
constexpr auto kServerShutdownGrace = std::chrono::seconds(5);
// How long shutdown lets an apply cancelled by it end by itself before the process exits
// without it.
constexpr auto kStuckApplyGrace = std::chrono::milliseconds(1000);

struct Flags {
  std::string listen;
  std::string controller;
  std::string controller_max_backoff = "5s";
  bool dry_run = false;
  std::string name;
  std::vector<std::string> labels;
  std::string state_dir = "/var/lib/faultline/agent";
  bool insecure = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  uint32_t tls_refresh_s = 10;
  std::string max_fault_duration = "1h";
  uint32_t max_active_faults = 64;
  std::string max_lease_ttl = "5m";
  std::string deadman_timeout = "3s";
  uint32_t max_connections = 256;
  std::string ready_file;
  std::string metrics_listen;
  std::string log_level = "info";
  std::string docker_socket;
  std::string cri_socket;
  std::vector<std::string> allow_probe_commands;
};

Result<std::map<std::string, std::string>> ParseLabels(const std::vector<std::string>& flags) {
  std::map<std::string, std::string> labels;
  for (const std::string& flag : flags) {
    size_t eq = flag.find('=');
    if (eq == std::string::npos) {
      return faultline::InvalidArgument("--label '" + flag + "': want key=value");
    }
    std::string key = flag.substr(0, eq);
    std::string value = flag.substr(eq + 1);
    if (!faultline::IsLabelToken(key) || !faultline::IsLabelToken(value)) {
      return faultline::InvalidArgument("--label '" + flag + "': key and value " +
                                        faultline::kLabelTokenRule);
    }
    if (labels.count(key) != 0) {
      return faultline::InvalidArgument("--label: key '" + key + "' given twice");
    }
    labels[key] = value;
  }
  return labels;
}

// HOST:PORT with a numeric port; HOST may be a bracketed IPv6 address.
Status ValidateListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return faultline::InvalidArgument("--listen '" + listen + "': want HOST:PORT");
  }
  std::string port = listen.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return faultline::InvalidArgument("--listen '" + listen + "': port must be 0-65535");
  }
  return Status::Ok();
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "faultline-agent";
  return buf;
}

// `modules`: every kind's backend module (BuiltinBackendModules), their flags parsed.
int Run(const Flags& flags,
        const std::vector<std::unique_ptr<faultline::agent::BackendModule>>& modules,
        const faultline::BlockedSignals& stop_signals) {
  using namespace faultline;
  using namespace faultline::agent;

  if (flags.listen.empty() && flags.controller.empty()) {
    spdlog::error("give --listen HOST:PORT, --controller HOST:PORT, or both");
    return kExitUsage;
  }
  if (!flags.listen.empty()) {
    if (Status s = ValidateListen(flags.listen); !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  if (!flags.metrics_listen.empty()) {
    std::string host;
    int port = 0;
    if (Status s =
            metrics::ParseListenAddress("--metrics-listen", flags.metrics_listen, &host, &port);
        !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  const bool any_tls = !flags.tls_ca.empty() || !flags.tls_cert.empty() || !flags.tls_key.empty();
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (flags.insecure) {
    if (any_tls) {
      spdlog::error("--insecure and --tls-* exclude each other: choose one");
      return kExitUsage;
    }
    for (const std::string& address : {flags.listen, flags.controller}) {
      if (address.empty()) continue;
      if (Status s = CheckPlaintextAllowed(address); !s.ok()) {
        spdlog::error("{}", s.message());
        return kExitUsage;
      }
    }
  } else {
    if (flags.tls_ca.empty() || flags.tls_cert.empty() || flags.tls_key.empty()) {
      spdlog::error(
          "mTLS is required: pass --tls-ca, --tls-cert and --tls-key (`faultline certs init DIR` "
          "makes development ones), or --insecure on a loopback or sandbox address");
      return kExitUsage;
    }
    if (flags.tls_refresh_s == 0) {
      spdlog::error("--tls-refresh must be at least 1 second");
      return kExitUsage;
    }
    Result<std::shared_ptr<grpc::ServerCredentials>> made =
        MakeServerCredentials(TlsFiles{flags.tls_ca, flags.tls_cert, flags.tls_key},
                              std::chrono::seconds(flags.tls_refresh_s));
    if (!made.ok()) {
      spdlog::error("{}", made.status().message());
      return kExitUsage;
    }
    credentials = *made;
  }
  Result<std::map<std::string, std::string>> labels = ParseLabels(flags.labels);
  if (!labels.ok()) {
    spdlog::error("{}", labels.status().message());
    return kExitUsage;
  }
  Result<Duration> max_lease_ttl = ParseDuration(flags.max_lease_ttl);
  if (!max_lease_ttl.ok() || max_lease_ttl->count() <= 0) {
    spdlog::error("--max-lease-ttl '{}': {}", flags.max_lease_ttl,
                  max_lease_ttl.ok() ? "must be greater than 0" : max_lease_ttl.status().message());
    return kExitUsage;
  }
  Result<Duration> max_fault_duration = ParseDuration(flags.max_fault_duration);
  if (!max_fault_duration.ok() || max_fault_duration->count() <= 0) {
    spdlog::error(
        "--max-fault-duration '{}': {}", flags.max_fault_duration,
        max_fault_duration.ok() ? "must be greater than 0" : max_fault_duration.status().message());
    return kExitUsage;
  }
  if (flags.max_active_faults == 0) {
    spdlog::error("--max-active-faults must be at least 1");
    return kExitUsage;
  }
  for (const auto& module : modules) {
    if (Status s = module->CheckFlags(); !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  const std::string name = flags.name.empty() ? HostName() : flags.name;
  Result<Duration> deadman_timeout = ParseDuration(flags.deadman_timeout);
  if (!deadman_timeout.ok() || *deadman_timeout < std::chrono::milliseconds(500) ||
      *deadman_timeout > std::chrono::minutes(10)) {
    spdlog::error("--deadman-timeout '{}': must be a duration from 500ms to 10m",
                  flags.deadman_timeout);
    return kExitUsage;
  }
  // One dead-man switch keeps every fault table of every backend alive while this process lives;
  // the tables' ownership records (what revert may delete) live in <state-dir>/tables.
  auto fault_tables = std::make_shared<host::FaultTables>(
      std::make_shared<host::NftRuleset>(),
      std::make_shared<host::DeadmanSwitch>(
          std::chrono::duration_cast<std::chrono::milliseconds>(*deadman_timeout)),
      flags.state_dir + "/tables");

  // A ready file from an earlier run must not announce this one before it is ready.
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());

  Result<std::unique_ptr<Journal>> journal = Journal::Open(flags.state_dir + "/journal");
  if (!journal.ok()) {
    spdlog::error("{}", journal.status().ToString());
    return kExitFailure;
  }

  FaultRegistry registry;
  // --dry-run: every kind validated by its real backend, nothing touches the host (not even
  // capability detection: no nft tables, no netlink, no subprocesses).
  // Each kind serves the host and workloads' network namespaces (workload_router.h): its module
  // makes an instance per namespace (BackendModule::MakeNetnsBackend).
  // Workload discovery (ListWorkloads, ApplyFault's workload, the restart policy).
  auto workload_resolver =
      std::make_shared<workloads::WorkloadResolver>(workloads::WorkloadResolverOptions{
          flags.docker_socket, flags.cri_socket, std::chrono::milliseconds(3000), name});
  NetnsBackendSettings netns_settings;
  netns_settings.state_dir = flags.state_dir;
  netns_settings.deadman_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(*deadman_timeout);
  netns_settings.table_record_dir = flags.state_dir + "/tables";
  auto register_backend = [&](std::unique_ptr<FaultBackend> backend, BackendModule& module) {
    if (flags.dry_run) {
      backend = std::make_unique<DryRunBackend>(std::move(backend));
    } else {
      auto router = std::make_unique<WorkloadRouter>(std::move(backend),
                                                     ModuleInNetns(module, netns_settings));
      // Restart policy: a workload restarted during its fault gets it again on its new instance,
      // re-resolved by runtime and id (workload_router.h).
      router->FollowRestarts(ResolveThroughDiscovery(workload_resolver), std::chrono::seconds(1));
      backend = std::move(router);
    }
    return registry.Register(std::move(backend));
  };
  BackendEnvironment backend_env;
  backend_env.state_dir = flags.state_dir;
  backend_env.control_port =
      flags.listen.empty()
          ? 0
          : static_cast<uint16_t>(std::stoi(flags.listen.substr(flags.listen.rfind(':') + 1)));
  backend_env.tables = fault_tables;
  for (const auto& module : modules) {
    Result<std::unique_ptr<FaultBackend>> backend = module->MakeBackend(backend_env);
    if (!backend.ok()) {
      spdlog::error("{}", backend.status().ToString());
      return kExitFailure;
    }
    if (Status s = register_backend(std::move(*backend), *module); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return kExitFailure;
    }
  }
  Capabilities caps = registry.DetectAll();
  for (const std::string& kind : caps.available) spdlog::info("capability available: {}", kind);
  for (const auto& [kind, reason] : caps.missing) {
    spdlog::info("capability missing: {} ({})", kind, reason);
  }

  metrics::Registry metrics_registry;
  AgentMetrics agent_metrics(metrics_registry, name, AgentVersion(), caps.available);

  FaultManagerOptions options;
  options.max_active_faults = flags.max_active_faults;
  options.max_lease_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(*max_lease_ttl);
  options.max_fault_duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(*max_fault_duration);
  // Leftovers of a crashed agent: faultline_* nft tables, the NFQUEUE rules of latency faults and
  // netem root qdiscs (handle fa17:) no journal record restored. Not in a dry run: it created
  // none, and other agents on this host may own such state.
  // Tables are swept only where this agent's ownership record says it made them (fault_tables.h).
  if (!flags.dry_run)
    options.sweep_tables = [&modules, fault_tables]() -> Result<std::vector<std::string>> {
      auto tables = fault_tables->Sweep(host::kTablePrefix);
      std::vector<Result<std::vector<std::string>>> leftovers;
      for (const auto& module : modules) leftovers.push_back(module->SweepLeftovers());
      if (!tables.ok()) return tables;
      for (auto& swept : leftovers) {
        if (!swept.ok()) return swept;
        tables->insert(tables->end(), swept->begin(), swept->end());
      }
      return tables;
    };
  agent_metrics.InstallObservers(&options);
  FaultManager manager(registry, **journal, SystemClock::Instance(), options);
  agent_metrics.CollectFrom(manager);

  RecoveryReport recovery = manager.Recover();
  spdlog::info(
      "recovery: {} journaled fault(s) reverted, {} failed, {} corrupt record(s), {} leftover "
      "table(s) swept",
      recovery.reverted.size(), recovery.failed.size(), recovery.corrupt.size(),
      recovery.swept_tables.size());
  manager.StartLeaseThread();

  probes::InitProbes();
  agent::ProbeStreamOptions probe_options;
  probe_options.allowed_commands = flags.allow_probe_commands;
  // A probe `from:` a workload target runs in the workload this agent's own discovery resolves.
  probe_options.list_workloads =
      [workload_resolver](
          const v1::WorkloadSelector& selector) -> Result<std::vector<workloads::Workload>> {
    auto found = workload_resolver->Resolve(selector);
    if (!found.ok()) return found.status();
    return std::move(found->workloads);
  };
  agent::ProbeStreams probe_streams(std::move(probe_options));
  // A run that faults every workload it picked on this host sends all its applies at once (one
  // per container): queue as many as the agent may hold active, so up to --max-active-faults
  // containers are faulted at once without a RESOURCE_EXHAUSTED (bench/container_bench.sh).
  ApplyExecutorOptions apply_options;
  apply_options.max_queued = std::max<size_t>(apply_options.max_queued, flags.max_active_faults);
  AgentService service(manager, registry, AgentIdentity{name, *labels},
                       flags.insecure ? AccessPolicy::kPlaintextAllowAll
                                      : AccessPolicy::kRequireOperatorOrController,
                       apply_options);
  service.SetProbeStreams(&probe_streams);
  service.SetWorkloads(
      [workload_resolver](const v1::WorkloadSelector& selector) {
        return workloads::ListWorkloads(*workload_resolver, selector);
      },
      workload_resolver->DescribeRuntimes());
  std::unique_ptr<grpc::Server> server;
  // --listen: gRPC serves a private unix socket; the accept gate owns the public address and
  // caps concurrent connections (agent/net/accept_gate.h).
  std::unique_ptr<net::AcceptGate> gate;
  std::string address = "(no server)";
  if (!flags.listen.empty()) {
    Result<std::string> socket_path = net::PrivateSocketPath(flags.state_dir + "/grpc");
    if (!socket_path.ok()) {
      spdlog::error("{}", socket_path.status().ToString());
      manager.Shutdown();
      return kExitFailure;
    }
    int selected_port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + *socket_path,
                             flags.insecure ? grpc::InsecureServerCredentials() : credentials,
                             &selected_port);
    ApplyServerLimits(builder, ServerLimits{});
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    Result<std::unique_ptr<net::AcceptGate>> started =
        server == nullptr
            ? Result<std::unique_ptr<net::AcceptGate>>(
                  Unavailable("gRPC cannot serve " + *socket_path))
            : net::AcceptGate::Start({flags.listen, *socket_path, flags.max_connections});
    if (!started.ok()) {
      spdlog::error("cannot listen on {}: {}", flags.listen, started.status().message());
      if (server) server->Shutdown();
      manager.Shutdown();
      return kExitFailure;
    }
    gate = std::move(started).value();
    selected_port = gate->port();
    agent_metrics.CollectConnections([g = gate.get()] {
      net::AcceptGateStats stats = g->stats();
      return ConnectionCounts{stats.open, stats.refused};
    });
    for (const auto& module : modules) module->SetControlPort(static_cast<uint16_t>(selected_port));
    const std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
    address = host + ":" + std::to_string(selected_port);
  }
  spdlog::info(
      "faultline-agent {} '{}' listening on {} ({}), journal {}, max {} faults, max lease {}, "
      "max fault duration {}{}",
      AgentVersion(), name, address,
      flags.insecure ? "PLAINTEXT, --insecure" : "mTLS, client certificates required",
      (*journal)->dir(), options.max_active_faults, FormatDuration(*max_lease_ttl),
      FormatDuration(*max_fault_duration), flags.dry_run ? ", DRY RUN (nothing is applied)" : "");

  // The outbound link to a controller, executing its commands with the same manager.
  std::unique_ptr<ControllerLink> link;
  if (!flags.controller.empty()) {
    ControllerLinkOptions link_options;
    link_options.address = flags.controller;
    Result<Duration> max_backoff = ParseDuration(flags.controller_max_backoff);
    if (!max_backoff.ok() || *max_backoff < link_options.min_backoff) {
      spdlog::error("--controller-max-backoff '{}': want a duration of at least 200ms",
                    flags.controller_max_backoff);
      if (server) server->Shutdown();
      manager.Shutdown();
      return kExitUsage;
    }
    link_options.max_backoff = *max_backoff;
    if (flags.insecure) {
      link_options.credentials = grpc::InsecureChannelCredentials();
    } else {
      // Only a controller certificate may send this agent commands down the link.
      auto made =
          MakeChannelCredentials(TlsFiles{flags.tls_ca, flags.tls_cert, flags.tls_key},
                                 Role::kController, std::chrono::seconds(flags.tls_refresh_s));
      if (!made.ok()) {
        spdlog::error("{}", made.status().message());
        if (server) server->Shutdown();
        manager.Shutdown();
        return kExitUsage;
      }
      link_options.credentials = *made;
    }
    link = std::make_unique<ControllerLink>(manager, registry, AgentIdentity{name, *labels},
                                            link_options);
    link->SetProbeStreams(&probe_streams);
    link->SetWorkloadLister([workload_resolver](const v1::WorkloadSelector& selector) {
      return workloads::ListWorkloads(*workload_resolver, selector);
    });
    link->Start();
    spdlog::info("dialling controller {}", flags.controller);
    if (flags.listen.empty()) address = "controller " + flags.controller;
  }

  // Declared after `manager` so it stops serving (and reading the manager) before it goes away.
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!flags.metrics_listen.empty()) {
    auto started = metrics::MetricsServer::Start(flags.metrics_listen, metrics_registry);
    if (!started.ok()) {
      spdlog::error("{}", started.status().message());
      server->Shutdown();
      manager.Shutdown();
      return started.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
    }
    metrics_server = std::move(started).value();
    spdlog::info("metrics: GET http://{}/metrics (Prometheus text format)",
                 metrics_server->address());
  }

  if (!flags.ready_file.empty()) {
    if (Status s = WriteFileAtomically(flags.ready_file, address + "\n", 0644); !s.ok()) {
      spdlog::error("{}", s.ToString());
      if (link) link->Stop();
      if (server) server->Shutdown();
      manager.Shutdown();
      return kExitFailure;
    }
  }

  const int signal_number = stop_signals.Wait();
  spdlog::info("received {}: stopping the server and reverting every active fault",
               strsignal(signal_number));
  // A stop always wins: revert first, without waiting for applies in progress (Shutdown cancels
  // them and answers their callers), then stop taking applies, then stop serving. The gRPC
  // server's Shutdown waits for every call to be answered, which the two steps before ensure.
  probe_streams.CancelAll();
  Status shutdown = manager.Shutdown();
  service.StopApplies();
  if (link) link->Stop();
  if (server) server->Shutdown(std::chrono::system_clock::now() + kServerShutdownGrace);
  if (gate) gate->Stop();
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());
  const int code = shutdown.ok() ? 0 : kExitFailure;
  if (!shutdown.ok()) spdlog::error("shutdown: {}", shutdown.ToString());
  if (!service.WaitAppliesIdle(kStuckApplyGrace) ||
      (link && !link->WaitAppliesIdle(kStuckApplyGrace)) ||
      !manager.WaitRevertsIdle(kStuckApplyGrace)) {
    // An apply (or a revert Shutdown gave up on) is stuck in a backend (its thread cannot be
    // interrupted). Its fault was cancelled (or reported as not reverted) and every other fault
    // reverted; its journal record stays, so the next start reverts whatever it did.
    // Returning would destroy the manager and the backends under that thread: end the process
    // here instead, without running destructors.
    spdlog::warn(
        "shutdown: an apply is still stuck in a backend; exiting without waiting for it (its "
        "journal record makes the next start revert it)");
    spdlog::shutdown();
    ::_exit(code);
  }
  if (code == 0) spdlog::info("stopped cleanly");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // The guard of a fault the kernel cannot expire (agent/host/death_guard.h), not the daemon.
  if (argc > 1 && std::string(argv[1]) == faultline::agent::host::kGuardFlag) {
    return faultline::agent::RunGuard(argc, argv);
  }
  // Blocked before any thread exists, so every thread inherits the mask and the signals are
  // only ever taken by the sigwait in Run.
  const faultline::BlockedSignals stop_signals({SIGINT, SIGTERM});

  Flags flags;
  CLI::App app{"faultline-agent: applies and reverts faults on this host for Faultline"};
  app.add_option("--listen", flags.listen, "serve the Agent service on HOST:PORT");
  app.add_option("--controller", flags.controller,
                 "dial this faultline-controller (HOST:PORT) and take its commands (outbound "
                 "only; works behind NAT); with --listen the agent does both");
  app.add_option("--controller-max-backoff", flags.controller_max_backoff,
                 "longest wait between redials of a lost controller (jittered)")
      ->capture_default_str();
  app.add_flag("--dry-run", flags.dry_run,
               "validate and record every fault with the real backends' checks, but apply "
               "nothing to this host");
  app.add_option("--name", flags.name, "agent id reported by GetInfo (default: the hostname)");
  app.add_option("--label", flags.labels, "key=value label, repeatable ([A-Za-z0-9._-]{1,63})");
  app.add_option("--state-dir", flags.state_dir,
                 "state directory; the journal is DIR/journal, process pause records DIR/process, "
                 "nft table ownership records DIR/tables, gRPC's private socket DIR/grpc")
      ->capture_default_str();
  app.add_option("--tls-ca", flags.tls_ca,
                 "CA bundle (PEM) that signs accepted client certificates");
  app.add_option("--tls-cert", flags.tls_cert, "this agent's certificate (PEM)");
  app.add_option("--tls-key", flags.tls_key, "this agent's private key (PEM)");
  app.add_option("--tls-refresh", flags.tls_refresh_s,
                 "seconds between re-reads of the TLS files (rotation without restart)")
      ->capture_default_str();
  app.add_flag("--insecure", flags.insecure,
               "serve plaintext gRPC without authentication; refused unless --listen is loopback "
               "or a sandbox address (10.77.0.0/24 inside a network namespace)");
  app.add_option("--max-fault-duration", flags.max_fault_duration,
                 "a fault active this long is reverted however often its lease is renewed")
      ->capture_default_str();
  app.add_option("--max-active-faults", flags.max_active_faults, "cap on active faults")
      ->capture_default_str();
  app.add_option("--max-lease-ttl", flags.max_lease_ttl, "longest lease a caller may ask for")
      ->capture_default_str();
  // Each fault kind's own flags (its agent folder's module).
  std::vector<std::unique_ptr<faultline::agent::BackendModule>> modules =
      faultline::agent::BuiltinBackendModules();
  for (const auto& module : modules) module->AddFlags(app);
  app.add_option("--deadman-timeout", flags.deadman_timeout,
                 "how long a fault's nft rules outlive a dead agent (refreshed every quarter of "
                 "it while the agent runs; 500ms to 10m)")
      ->capture_default_str();
  app.add_option("--max-connections", flags.max_connections,
                 "--listen: concurrent connections to the gRPC port at most (handshaking, idle "
                 "or busy); the next one is closed at once and counted in "
                 "faultline_agent_connections_refused_total")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--ready-file", flags.ready_file,
                 "written (atomically) with the listening address once the agent serves");
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "serve Prometheus metrics as plain HTTP `GET /metrics` on HOST:PORT (e.g. "
                 "127.0.0.1:9464); off unless given");
  app.add_option("--docker-socket", flags.docker_socket,
                 "Docker Engine API socket for workload discovery (docker, podman); default: the "
                 "first of /run/docker.sock, /var/run/docker.sock, /run/podman/podman.sock; "
                 "'none': off");
  app.add_option("--cri-socket", flags.cri_socket,
                 "Kubernetes CRI socket for workload discovery; default: the first of "
                 "/run/containerd/containerd.sock, /run/crio/crio.sock; 'none': off");
  app.add_option("--allow-probe-command", flags.allow_probe_commands,
                 "absolute path of a program an agent-side command probe may run (argv[0] must "
                 "be exactly this path); repeatable; default none: command probes are refused")
      ->check([](const std::string& path) -> std::string {
        if (path.empty() || path[0] != '/') return "must be an absolute path, got '" + path + "'";
        return "";
      });
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  faultline::SetupLogging(flags.log_level, "faultline-agent");
  return Run(flags, modules, stop_signals);
}
