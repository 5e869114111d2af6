// faultline-controller: the long-running controller service (agent registry, runs submitted
// through it, fleet-wide fault list, halt-all). See controller/daemon/controller_service.h.
#include <absl/synchronization/mutex.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/duration.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "common/signals.h"
#include "common/tls.h"
#include "controller/access/audit.h"
#include "controller/access/team_policy.h"
#include "controller/console/console_server.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/controller_service.h"
#include "controller/daemon/schedule_loop.h"
#include "controller/metrics/run_metrics.h"
#include "controller/probes/probe_runner.h"
#include "controller/store/run_store.h"

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
  std::string store = faultline::store::DefaultHistoryUrl();
  std::string id;
  std::string metrics_listen;
  std::string console_listen;
  std::string lease_ttl = "15s";
  std::string schedule_tick = "5s";
  std::string schedule_lease = "30s";
  std::string schedule_start_deadline = "1m";
  uint32_t max_agents = 4096;
  std::vector<std::string> allow_command_probes;
  std::string policy;
};

Result<Duration> PositiveDuration(const std::string& flag, const std::string& value) {
  auto d = faultline::ParseDuration(value);
  if (!d.ok())
    return faultline::InvalidArgument(flag + " '" + value + "': " + d.status().message());
  if (d->count() <= 0) return faultline::InvalidArgument(flag + " must be greater than 0");
  return *d;
}

int Run(const Flags& flags, const faultline::BlockedSignals& stop_signals) {
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
  auto lease_ttl = PositiveDuration("--lease-ttl", flags.lease_ttl);
  auto tick = PositiveDuration("--schedule-tick", flags.schedule_tick);
  auto schedule_lease = PositiveDuration("--schedule-lease", flags.schedule_lease);
  auto start_deadline =
      PositiveDuration("--schedule-start-deadline", flags.schedule_start_deadline);
  for (const Status& s : {heartbeat.status(), fanout.status(), lease_ttl.status(), tick.status(),
                          schedule_lease.status(), start_deadline.status()}) {
    if (!s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  daemon::ScheduleLoopOptions loop_options;
  loop_options.tick = duration_cast<milliseconds>(*tick);
  loop_options.scheduler.lease_ttl = duration_cast<milliseconds>(*schedule_lease);
  loop_options.scheduler.start_deadline = duration_cast<milliseconds>(*start_deadline);
  if (Status s = daemon::ValidateScheduleLoopOptions(loop_options); !s.ok()) {
    spdlog::error("{}", s.message());
    return kExitUsage;
  }
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());
  probes::InitProbes();

  // The shared run history: several controllers may point at one PostgreSQL URL.
  std::unique_ptr<store::RunStore> run_store;
  if (flags.store != "none") {
    auto opened = store::OpenRunStore(flags.store);
    if (!opened.ok()) {
      spdlog::error("--store {}: {}", store::RedactUrl(flags.store),
                    store::RedactUrl(opened.status().message()));
      return kExitUsage;
    }
    run_store = std::move(*opened);
  }
  std::string controller_id = flags.id;
  if (controller_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    controller_id = std::string("faultline-controller@") + host;
  }

  // Prometheus: run verdicts and figures, attached agents, halt state. Off unless asked.
  metrics::Registry metrics_registry;
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  std::mutex metrics_mu;
  if (!flags.metrics_listen.empty()) {
    Status s = run_metrics::DeclareRunMetrics(metrics_registry);
    if (s.ok()) {
      s = metrics_registry.Declare("faultline_controller_agents_live", metrics::MetricType::kGauge,
                                   "Agents attached to this controller with a live heartbeat");
    }
    if (s.ok()) {
      s = metrics_registry.Declare("faultline_controller_halted", metrics::MetricType::kGauge,
                                   "1 while a halt is in force (until resume), else 0");
    }
    if (!s.ok()) {
      spdlog::error("metrics: {}", s.message());
      return kExitFailure;
    }
  }

  // The team policy: read at start (an invalid file refuses to start), re-read on SIGHUP (an
  // invalid file then keeps the policy in force).
  std::unique_ptr<access::PolicyFile> policy;
  if (!flags.policy.empty()) {
    policy = std::make_unique<access::PolicyFile>(flags.policy);
    if (Status s = policy->Reload(); !s.ok()) {
      spdlog::error("--policy: {}", s.message());
      return kExitUsage;
    }
    spdlog::info("team policy {}: {} team(s); SIGHUP reloads it", flags.policy,
                 policy->Current()->teams().size());
  }
  access::AuditLog audit(run_store.get());

  daemon::AgentRegistryOptions registry_options;
  registry_options.heartbeat_interval = *heartbeat;
  registry_options.max_agents = flags.max_agents;
  daemon::AgentRegistry registry(registry_options);
  daemon::ControllerServiceOptions service_options;
  service_options.plaintext_allow_all = flags.insecure;
  service_options.fanout_deadline = *fanout;
  service_options.default_lease_ttl = *lease_ttl;
  service_options.store = run_store.get();
  service_options.controller_id = controller_id;
  service_options.command_probe_allowlist = flags.allow_command_probes;
  service_options.policy = policy.get();
  service_options.audit = &audit;
  if (!flags.metrics_listen.empty()) {
    service_options.on_run_finished = [&metrics_registry, &metrics_mu](const engine::RunResult& r) {
      std::lock_guard lock(metrics_mu);
      if (Status s = run_metrics::RecordRun(metrics_registry, r); !s.ok()) {
        spdlog::warn("metrics: run not recorded: {}", s.message());
      }
    };
  }
  // The console (HTTPS, the controller's certificate): it watches every run and halt, so it is
  // the supervisor's observer and outlives it.
  std::unique_ptr<console::ConsoleServer> console_server;
  daemon::ControllerService* service_for_console = nullptr;
  if (!flags.console_listen.empty()) {
    if (flags.tls_cert.empty() || flags.tls_key.empty()) {
      spdlog::error("--console-listen serves HTTPS only: it needs --tls-cert and --tls-key");
      return kExitUsage;
    }
    console::ConsoleServerOptions console_options;
    console_options.listen = flags.console_listen;
    console_options.cert_file = flags.tls_cert;
    console_options.key_file = flags.tls_key;
    console_options.ca_file = flags.tls_ca;
    // Tokens and audit come from the access layer the Controller service owns (built just
    // below; the console serves nothing before Start, after it exists).
    console_options.auth.token =
        [&service_for_console](const std::string& token) -> Result<access::Principal> {
      access::TokenAuthority* tokens =
          service_for_console ? service_for_console->tokens() : nullptr;
      if (tokens == nullptr) return Unauthenticated("this controller has no token store");
      return tokens->Authenticate(token, "");
    };
    // A revoked token ends the console sessions made from it at their next request.
    console_options.auth.still_valid = [&service_for_console](const access::Principal& p) {
      access::TokenAuthority* tokens =
          service_for_console ? service_for_console->tokens() : nullptr;
      if (tokens == nullptr) return Unauthenticated("this controller has no token store");
      return tokens->CheckStillValid(p.token_id);
    };
    console_options.auth.audit = [&service_for_console](const console::AuditRecord& r) {
      if (service_for_console == nullptr) return;
      access::Principal who = r.principal;
      if (who.source.empty()) who.source = "console";
      who.peer = r.peer;
      service_for_console->audit().Record(
          "console." + r.action, who, r.allowed ? Status::Ok() : PermissionDenied(r.detail),
          r.target.empty() ? r.detail : "target=" + r.target + " " + r.detail);
    };
    console_server = std::make_unique<console::ConsoleServer>(std::move(console_options));
    service_options.observer = &console_server->observer();
  }
  auto service = std::make_unique<daemon::ControllerService>(registry, service_options);
  service_for_console = service.get();
  if (console_server) {
    console::ConsoleBackend backend;
    backend.supervisor = &service->supervisor();
    backend.store = run_store.get();
    backend.agents = [&registry] { return registry.List(true); };
    if (Status s = console_server->Start(std::move(backend)); !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  if (!flags.metrics_listen.empty()) {
    daemon::ControllerService* svc = service.get();
    metrics_registry.AddCollector([&registry, svc](metrics::Registry& r) {
      r.Set("faultline_controller_agents_live", {}, static_cast<double>(registry.LiveCount()));
      r.Set("faultline_controller_halted", {}, svc->halted() ? 1 : 0);
    });
    auto started = metrics::MetricsServer::Start(flags.metrics_listen, metrics_registry);
    if (!started.ok()) {
      spdlog::error("--metrics-listen: {}", started.status().message());
      return kExitUsage;
    }
    metrics_server = std::move(*started);
    spdlog::info("metrics on http://{}/metrics", metrics_server->address());
  }

  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(flags.listen, credentials, &port);
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  daemon::ConfigureControllerServer(builder);
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
  // Schedules fire only with a store: the leader lease and the firings live there.
  std::unique_ptr<daemon::ScheduleLoop> schedule_loop;
  if (run_store) {
    loop_options.scheduler.holder = controller_id;
    schedule_loop = std::make_unique<daemon::ScheduleLoop>(*service, *run_store,
                                                           SystemClock::Instance(), loop_options);
    spdlog::info("schedules from {} (controller id {}, tick {})", run_store->Describe(),
                 controller_id, FormatDuration(*tick));
  } else {
    spdlog::info("--store none: no run history and no schedules");
  }
  int sig = stop_signals.Wait();
  while (sig == SIGHUP) {
    if (!policy) {
      spdlog::info("SIGHUP: no --policy to reload");
    } else if (Status s = policy->Reload(); !s.ok()) {
      spdlog::error("SIGHUP: {} not reloaded, the previous policy stays in force: {}", flags.policy,
                    s.message());
    } else {
      spdlog::info("SIGHUP: team policy {} reloaded: {} team(s)", flags.policy,
                   policy->Current()->teams().size());
    }
    sig = stop_signals.Wait();
  }
  spdlog::info("received {}: cancelling runs (their faults are reverted) and stopping",
               strsignal(sig));
  // No new scheduled run; the lease goes to another controller at once.
  if (schedule_loop) schedule_loop->Stop();
  // Runs first, while agents are still attached, so their faults are reverted on the way out.
  if (metrics_server) metrics_server->Stop();
  if (console_server) console_server->Stop();
  service_for_console = nullptr;  // the console's token and audit hooks point at the service
  service.reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  if (!flags.ready_file.empty()) ::unlink(flags.ready_file.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const faultline::BlockedSignals stop_signals({SIGINT, SIGTERM, SIGHUP});
  // Debian's abseil is built with its debug-mode mutex deadlock detection on: every absl::Mutex
  // gRPC locks or destroys goes through a global graph, 13 % of the controller's CPU in a halt of
  // 10 000 agents (perf, bench/RESULTS.md). A release build of abseil has it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  Flags flags;
  CLI::App app{
      "faultline-controller: agent registry, runs, scheduled game days, shared run history, "
      "fleet-wide halt for Faultline"};
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
  app.add_option("--store", flags.store,
                 "run history, schedules and halt state: sqlite:///path (default "
                 "$FAULTLINE_HISTORY, else sqlite:///var/lib/faultline/history.db), "
                 "postgresql://... shared by several controllers (a schedule fires once across "
                 "them), or none (no history and no schedules)");
  app.add_option("--id", flags.id,
                 "this controller's name in the store (default faultline-controller@HOSTNAME; "
                 "unique per controller); runs it left running when killed are marked "
                 "interrupted at its next start, or by another controller once its presence "
                 "lease (--schedule-lease) lapses");
  app.add_option("--lease-ttl", flags.lease_ttl,
                 "lease of the faults of scheduled runs, and of submitted runs that do not say; "
                 "a fault outlives a killed controller by at most this")
      ->capture_default_str();
  app.add_option("--schedule-tick", flags.schedule_tick,
                 "how often due schedules are checked and the leases renewed (at most a third of "
                 "--schedule-lease)")
      ->capture_default_str();
  app.add_option("--schedule-lease", flags.schedule_lease,
                 "TTL of the scheduling leader lease and of this controller's presence lease: "
                 "another controller takes over scheduling, and marks this one's runs "
                 "interrupted, at most this long after it dies")
      ->capture_default_str();
  app.add_option("--schedule-start-deadline", flags.schedule_start_deadline,
                 "a due time first seen later than this after it passed is recorded "
                 "missed:controller-down instead of starting late")
      ->capture_default_str();
  app.add_option("--max-agents", flags.max_agents,
                 "most agents the registry holds; a new one beyond it replaces the agent gone "
                 "longest, or is refused (RESOURCE_EXHAUSTED) when all are live")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--allow-command-probe", flags.allow_command_probes,
                 "a program (argv[0], exactly as experiments write it; prefer absolute paths) "
                 "that command probes may run on this host, repeatable; none by default: an "
                 "experiment with a command probe `from: controller` is refused")
      ->type_name("PROGRAM");
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "serve Prometheus metrics (GET /metrics only) on HOST:PORT; off by default");
  app.add_option("--console-listen", flags.console_listen,
                 "serve the game-day console (HTTPS with --tls-cert/--tls-key; client "
                 "certificates optional, verified by --tls-ca) on HOST:PORT; off by default");
  app.add_option("--policy", flags.policy,
                 "team policy file (YAML, docs/access.md): which agents each team may target, "
                 "the largest blast radius per run and time windows; a principal without a "
                 "team may then not start runs. Reloaded on SIGHUP.");
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
