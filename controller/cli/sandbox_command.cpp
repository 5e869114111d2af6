#include "controller/cli/sandbox_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "controller/sandbox/sandbox.h"

namespace faultline::cli {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitPartial = 1;
constexpr int kExitDown = 3;
constexpr int kExitInfrastructure = 4;

struct UpFlags {
  std::string failover = "auto";
  int threshold = 3;
  int retries = 0;
  int db_restart_delay_ms = 1000;
  int fail_delay_ms = 0;
  std::string bin_dir;
  std::string dnsmasq = "dnsmasq";
  bool no_agents = false;
  bool prometheus = false;
  std::string prometheus_bin = "prometheus";
  int ready_timeout_s = 20;
  bool containers = false;
  int container_replicas = 1;
  std::string podman = "podman";
};

void PrintUp(const sandbox::SandboxOptions& o) {
  std::cout << "sandbox up (failover " << sandbox::FailoverModeName(o.failover) << " after "
            << o.failover_threshold << " failures)\n";
  for (const auto& h : sandbox::SandboxHosts()) {
    std::cout << "  " << h.name << "  " << h.address << "  role=" << h.role
              << (h.region.empty() ? "" : "  region=" + h.region) << "\n";
  }
  std::cout << "  orders service: " << sandbox::OrdersServiceUrl() << "/orders/42\n"
            << "  inventory:      " << sandbox::SandboxInventoryPath()
            << (o.start_agents ? "" : "  (no agents started)") << "\n"
            << "  logs:           " << sandbox::SandboxRunDir() << "/logs/\n";
  if (o.prometheus) {
    std::cout << "  prometheus:     " << sandbox::SandboxPrometheusUrl()
              << "  (scrapes orders, kv and agents every 1s; alert OrdersErrorRatioHigh)\n";
  }
  if (o.containers) {
    std::cout
        << "  containers (Podman; each host's API at <run dir>/containers/<host>/podman.sock):\n";
    for (const auto& c : sandbox::SandboxContainers(o.container_replicas)) {
      std::string labels;
      for (const auto& [k, v] : c.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
      std::cout << "    " << c.name << "  on " << c.host << "  " << c.address << ":" << c.port
                << "  " << labels << "\n";
    }
  }
}

void PrintStatus(const sandbox::SandboxStatus& st) {
  using State = sandbox::SandboxStatus::State;
  const char* state = st.state == State::kUp        ? "up"
                      : st.state == State::kPartial ? "partly up"
                                                    : "down";
  std::cout << "sandbox: " << state;
  if (st.failover) {
    std::cout << " (failover " << sandbox::FailoverModeName(*st.failover) << " after "
              << st.failover_threshold << " failures)";
  }
  std::cout << "\n";
  if (st.state == State::kDown) return;
  std::cout << "  root ns  " << sandbox::kRootAddress << " via " << sandbox::kRootLink << ": "
            << (st.root_link_present ? "present" : "MISSING") << "\n";
  std::cout << "  " << sandbox::kBridgeNamespace << "   bridge " << sandbox::kBridgeName << ": "
            << (st.bridge_present ? "present" : "MISSING") << "\n";
  for (const auto& h : st.hosts) {
    std::cout << "  " << h.host.name << "  " << h.host.address << "  "
              << (h.namespace_present ? "present" : "MISSING") << "\n";
    for (const auto& p : st.processes) {
      if (p.host != h.host.name) continue;
      std::cout << "      " << p.name << ": "
                << (p.alive ? "running, pid " + std::to_string(p.pid) : std::string("NOT RUNNING"))
                << "  (" << p.log_path << ")\n";
    }
    for (const auto& c : st.containers_status) {
      if (c.container.host != h.host.name) continue;
      std::cout << "      container " << c.container.name << " " << c.container.address << ": "
                << (c.running
                        ? "running, pid " + std::to_string(c.pid) + ", id " + c.id.substr(0, 12)
                        : std::string("NOT RUNNING"))
                << "  (" << c.log_path << ")\n";
    }
  }
  for (const auto& problem : st.problems) std::cout << "  problem: " << problem << "\n";
}

}  // namespace

void AddSandboxCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "sandbox",
      "Local test hosts in network namespaces (fl-app, fl-dns, fl-db-east, fl-db-west on "
      "10.77.0.0/24): dnsmasq, the sample orders and key-value services, an agent on each. "
      "Needs root.");
  cmd->require_subcommand(1);

  auto up_flags = std::make_shared<UpFlags>();
  CLI::App* up = cmd->add_subcommand(
      "up",
      "Tear down any previous sandbox, then build it and wait until every daemon is ready. "
      "Writes /run/faultline/sandbox/inventory.yaml. Exit 0 when up, 4 on failure (everything "
      "made is torn down again).");
  up->add_option("--failover", up_flags->failover,
                 "orders service failover: auto (switch to us-west-2 after N failures) or off "
                 "(never; the negative control)")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  up->add_option("--failover-threshold", up_flags->threshold,
                 "consecutive dependency failures before the orders service fails over")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  up->add_option("--bin-dir", up_flags->bin_dir,
                 "directory with faultline-agent and the sample services (default: this "
                 "program's directory)");
  up->add_option("--retries", up_flags->retries,
                 "the orders service retries a failed dependency call this many times")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  up->add_option("--db-restart-delay-ms", up_flags->db_restart_delay_ms,
                 "milliseconds before a db host's supervisor restarts its killed key-value service")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  up->add_option("--orders-fail-delay-ms", up_flags->fail_delay_ms,
                 "the orders service waits this long before answering a failure (a service whose "
                 "failing requests are slow)")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  up->add_option("--dnsmasq", up_flags->dnsmasq, "dnsmasq program")->capture_default_str();
  up->add_flag("--no-agents", up_flags->no_agents,
               "start no agents (the inventory then lists none)");
  up->add_flag("--prometheus", up_flags->prometheus,
               "also run a real Prometheus on the dns host (" + sandbox::SandboxPrometheusUrl() +
                   ") that scrapes the sample services every second, for prometheus probes "
                   "and prometheus_alert abort conditions");
  up->add_option("--prometheus-bin", up_flags->prometheus_bin,
                 "Prometheus program (Debian package prometheus)")
      ->capture_default_str();
  up->add_flag("--containers", up_flags->containers,
               "also run the orders and key-value services as Podman containers (root filesystem "
               "built from these binaries, no registry), each in its own network namespace "
               "fl-c-<name>, discovered by its host's agent (labels app=orders|kv, tier=web|db, "
               "region on kv)");
  up->add_option("--container-replicas", up_flags->container_replicas,
                 "--containers: containers per service and region")
      ->check(CLI::Range(1, sandbox::kMaxContainerReplicas))
      ->capture_default_str();
  up->add_option("--podman", up_flags->podman, "podman program")->capture_default_str();
  up->add_option("--ready-timeout", up_flags->ready_timeout_s,
                 "seconds to wait for all daemons to become ready")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  up->callback([up_flags, exit_code] {
    sandbox::SandboxOptions o;
    o.failover =
        up_flags->failover == "off" ? sandbox::FailoverMode::kOff : sandbox::FailoverMode::kAuto;
    o.failover_threshold = up_flags->threshold;
    o.orders_retries = up_flags->retries;
    o.db_restart_delay_ms = up_flags->db_restart_delay_ms;
    o.orders_fail_delay_ms = up_flags->fail_delay_ms;
    o.bin_dir = up_flags->bin_dir;
    o.dnsmasq = up_flags->dnsmasq;
    o.start_agents = !up_flags->no_agents;
    o.prometheus = up_flags->prometheus;
    o.prometheus_program = up_flags->prometheus_bin;
    o.ready_timeout = std::chrono::seconds(up_flags->ready_timeout_s);
    o.containers = up_flags->containers;
    o.container_replicas = up_flags->container_replicas;
    o.podman = up_flags->podman;
    Status s = sandbox::SandboxUp(o);
    if (!s.ok()) {
      std::cerr << "faultline sandbox up: " << s.message() << "\n";
      *exit_code = kExitInfrastructure;
      return;
    }
    PrintUp(o);
    *exit_code = kExitOk;
  });

  CLI::App* down = cmd->add_subcommand(
      "down",
      "Stop every process in the sandbox's namespaces and delete the namespaces, the fl-root "
      "link, /etc/netns/fl-* and /run/faultline/sandbox. Idempotent. Exit 0, or 4 when "
      "something could not be removed.");
  down->callback([exit_code] {
    Status s = sandbox::SandboxDown();
    if (!s.ok()) {
      std::cerr << "faultline sandbox down: " << s.message() << "\n";
      *exit_code = kExitInfrastructure;
      return;
    }
    std::cout << "sandbox down\n";
    *exit_code = kExitOk;
  });

  auto output = std::make_shared<std::string>("text");
  CLI::App* status = cmd->add_subcommand(
      "status",
      "Show hosts, addresses, which daemons are alive and the failover mode. Exit 0 when up "
      "and healthy, 1 when partly up (something missing or dead: run `sandbox up` again), 3 "
      "when down.");
  status->add_option("--output", *output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  status->callback([output, exit_code] {
    sandbox::SandboxStatus st = sandbox::GetSandboxStatus();
    if (*output == "json") {
      std::cout << sandbox::SandboxStatusToJson(st) << "\n";
    } else {
      PrintStatus(st);
    }
    using State = sandbox::SandboxStatus::State;
    *exit_code = st.state == State::kUp        ? kExitOk
                 : st.state == State::kPartial ? kExitPartial
                                               : kExitDown;
  });
}

}  // namespace faultline::cli
