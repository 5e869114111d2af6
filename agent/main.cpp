// faultline-agent: the daemon that applies and reverts faults on one test host.
//
// Start order: logging → registry (built-in backends registered explicitly) → capability
// detection → recovery (journal replay, then the faultline_* table sweep) → gRPC server → ready
// file → wait for SIGINT/SIGTERM, which stops the server and reverts every active fault.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_metrics.h"
#include "agent/agent_service.h"
#include "agent/controller_link.h"
#include "agent/dns/dns_backend.h"
#include "agent/dry_run_backend.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/guard.h"
#include "agent/host/deadman_switch.h"
#include "agent/host/death_guard.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nft_ruleset.h"
#include "agent/journal.h"
#include "agent/netfilter/network_backend.h"
#include "agent/netns_backends.h"
#include "agent/process/process_backend.h"
#include "agent/proxy/proxy_backend.h"
#include "agent/server_limits.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/labels.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
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
  std::string dns_upstream;
  uint16_t dns_intercept_port = 0;
  uint16_t nfqueue_first = 3100;
  uint16_t nfqueue_count = 8;
  int delay_line_rt_priority = 0;
  std::string latency_mechanism = "auto";
  std::string deadman_timeout = "3s";
  std::string proxy_idle_timeout = "1h";
  std::string ready_file;
  std::string metrics_listen;
  std::string log_level = "info";
  std::vector<std::string> protect_processes;
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

int Run(const Flags& flags, const faultline::BlockedSignals& stop_signals) {
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
  Result<netfilter::LatencyMechanismFlag> latency_mechanism =
      netfilter::ParseLatencyMechanismFlag(flags.latency_mechanism);
  if (!latency_mechanism.ok()) {
    spdlog::error("{}", latency_mechanism.status().message());
    return kExitUsage;
  }
  const std::string name = flags.name.empty() ? HostName() : flags.name;
  Result<Duration> deadman_timeout = ParseDuration(flags.deadman_timeout);
  if (!deadman_timeout.ok() || *deadman_timeout < std::chrono::milliseconds(500) ||
      *deadman_timeout > std::chrono::minutes(10)) {
    spdlog::error("--deadman-timeout '{}': must be a duration from 500ms to 10m",
                  flags.deadman_timeout);
    return kExitUsage;
  }
  // 0 turns the idle timeout off; ParseDuration caps at 7 days, which fits the int milliseconds.
  Result<Duration> proxy_idle_timeout = ParseDuration(flags.proxy_idle_timeout);
  if (!proxy_idle_timeout.ok() ||
      (proxy_idle_timeout->count() > 0 && *proxy_idle_timeout < std::chrono::milliseconds(1))) {
    spdlog::error("--proxy-idle-timeout '{}': {}", flags.proxy_idle_timeout,
                  proxy_idle_timeout.ok() ? "must be 0 or at least 1ms"
                                          : proxy_idle_timeout.status().message());
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
  // Each kind serves the host and workloads' network namespaces (workload_router.h).
  NetnsBackendSettings netns_settings;
  netns_settings.deadman_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(*deadman_timeout);
  netns_settings.table_record_dir = flags.state_dir + "/tables";
  auto register_backend = [&](std::unique_ptr<FaultBackend> backend, NetnsBackendFactory in_netns) {
    if (flags.dry_run) {
      backend = std::make_unique<DryRunBackend>(std::move(backend));
    } else {
      auto router = std::make_unique<WorkloadRouter>(std::move(backend), std::move(in_netns));
      // Restart policy: a workload restarted during its fault gets it again (workload_router.h).
      router->FollowRestarts(ResolveByNetnsPath, std::chrono::seconds(1));
      backend = std::move(router);
    }
    return registry.Register(std::move(backend));
  };
  dns::DnsBackendOptions dns_options;
  dns_options.upstream = flags.dns_upstream;
  dns_options.intercept_port = flags.dns_intercept_port;
  dns_options.tables = fault_tables;
  if (Status s = register_backend(std::make_unique<dns::DnsBackend>(dns_options),
                                  DnsInNetns(dns_options, netns_settings));
      !s.ok()) {
    spdlog::error("{}", s.ToString());
    return kExitFailure;
  }
  netfilter::NetworkBackendOptions net_options;
  net_options.control_port =
      flags.listen.empty()
          ? 0
          : static_cast<uint16_t>(std::stoi(flags.listen.substr(flags.listen.rfind(':') + 1)));
  net_options.queue_first = flags.nfqueue_first;
  net_options.queue_count = flags.nfqueue_count;
  net_options.realtime_priority = flags.delay_line_rt_priority;
  net_options.latency_mechanism = *latency_mechanism;
  net_options.netem_record_dir = flags.state_dir + "/netem";
  net_options.tables = fault_tables;
  net_options.guard_netem = true;
  auto network_backend = std::make_unique<netfilter::NetworkBackend>(net_options);
  netfilter::NetworkBackend* network = network_backend.get();
  if (Status s =
          register_backend(std::move(network_backend), NetworkInNetns(net_options, netns_settings));
      !s.ok()) {
    spdlog::error("{}", s.ToString());
    return kExitFailure;
  }
  process::ProcessBackendOptions process_options;
  process_options.record_dir = flags.state_dir + "/process";
  process_options.protected_names = flags.protect_processes;
  process_options.guard_pauses = true;
  if (Status s = register_backend(std::make_unique<process::ProcessBackend>(process_options),
                                  ProcessInNetns(process_options));
      !s.ok()) {
    spdlog::error("{}", s.ToString());
    return kExitFailure;
  }
  proxy::ProxyBackendOptions proxy_options;
  proxy_options.tables = fault_tables;
  proxy_options.idle_timeout_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(*proxy_idle_timeout).count());
  if (Status s = register_backend(std::make_unique<proxy::ProxyBackend>(proxy_options),
                                  ProxyInNetns(proxy_options, netns_settings));
      !s.ok()) {
    spdlog::error("{}", s.ToString());
    return kExitFailure;
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
    options.sweep_tables = [net_options, fault_tables]() -> Result<std::vector<std::string>> {
      auto tables = fault_tables->Sweep(host::kTablePrefix);
      auto rules = netfilter::SweepQueueRules(net_options);
      auto qdiscs = netfilter::SweepNetemQdiscs(net_options.run);
      if (!tables.ok()) return tables;
      if (!rules.ok()) return rules;
      tables->insert(tables->end(), rules->begin(), rules->end());
      // No ip/tc only means no netem qdisc of ours can exist: not a reason to fail recovery.
      if (qdiscs.ok()) {
        tables->insert(tables->end(), qdiscs->begin(), qdiscs->end());
      } else {
        spdlog::warn("sweep: netem qdiscs not checked: {}", qdiscs.status().message());
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

  AgentService service(manager, registry, AgentIdentity{name, *labels},
                       flags.insecure ? AccessPolicy::kPlaintextAllowAll
                                      : AccessPolicy::kRequireOperatorOrController);
  std::unique_ptr<grpc::Server> server;
  std::string address = "(no server)";
  if (!flags.listen.empty()) {
    int selected_port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(flags.listen,
                             flags.insecure ? grpc::InsecureServerCredentials() : credentials,
                             &selected_port);
    ApplyServerLimits(builder, ServerLimits{});
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    if (server == nullptr || selected_port == 0) {
      spdlog::error("cannot listen on {}", flags.listen);
      manager.Shutdown();
      return kExitFailure;
    }
    network->SetControlPort(static_cast<uint16_t>(selected_port));
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
  Status shutdown = manager.Shutdown();
  service.StopApplies();
  if (link) link->Stop();
  if (server) server->Shutdown(std::chrono::system_clock::now() + kServerShutdownGrace);
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());
  const int code = shutdown.ok() ? 0 : kExitFailure;
  if (!shutdown.ok()) spdlog::error("shutdown: {}", shutdown.ToString());
  if (!service.WaitAppliesIdle(kStuckApplyGrace) ||
      (link && !link->WaitAppliesIdle(kStuckApplyGrace))) {
    // An apply is stuck in a backend (its thread cannot be interrupted). Its fault was cancelled
    // and every other fault reverted; its journal record stays, so the next start reverts
    // whatever it did. Returning would destroy the manager and the backends under that thread:
    // end the process here instead, without running destructors.
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
                 "nft table ownership records DIR/tables")
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
  app.add_option("--dns-upstream", flags.dns_upstream,
                 "HOST[:PORT] for pass-through DNS queries (default: first resolv.conf server)");
  app.add_option("--dns-intercept-port", flags.dns_intercept_port,
                 "DNS interceptor port on 127.0.0.1 (0: pick a free one)")
      ->capture_default_str();
  app.add_option("--nfqueue-first", flags.nfqueue_first, "first NFQUEUE number for latency faults")
      ->capture_default_str();
  app.add_option("--nfqueue-count", flags.nfqueue_count,
                 "NFQUEUE numbers for latency faults (1-8): at most this many latency faults")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  app.add_option("--delay-line-rt-priority", flags.delay_line_rt_priority,
                 "SCHED_FIFO priority (1-99) for NFQUEUE delay line threads: tighter release "
                 "times on a loaded host; 0 = normal scheduling")
      ->check(CLI::Range(0, 99))
      ->capture_default_str();
  app.add_option("--latency-mechanism", flags.latency_mechanism,
                 "latency faults: auto (tc netem where detected and the egress devices' root "
                 "qdiscs are kernel defaults, else the NFQUEUE delay line), delay-line, or netem "
                 "(Apply fails where netem cannot be used)")
      ->capture_default_str();
  app.add_option("--protect-process", flags.protect_processes,
                 "a process name (comm or executable name) no process fault may touch, in "
                 "addition to init, faultline-agent/-controller, sshd, journald and the container "
                 "runtime; repeatable")
      ->type_name("NAME");
  app.add_option("--deadman-timeout", flags.deadman_timeout,
                 "how long a fault's nft rules outlive a dead agent (refreshed every quarter of "
                 "it while the agent runs; 500ms to 10m)")
      ->capture_default_str();
  app.add_option("--proxy-idle-timeout", flags.proxy_idle_timeout,
                 "dependency faults: a proxied connection with no byte moving either way for "
                 "this long is closed (0s: never)")
      ->capture_default_str();
  app.add_option("--ready-file", flags.ready_file,
                 "written (atomically) with the listening address once the agent serves");
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "serve Prometheus metrics as plain HTTP `GET /metrics` on HOST:PORT (e.g. "
                 "127.0.0.1:9464); off unless given");
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
  return Run(flags, stop_signals);
}
