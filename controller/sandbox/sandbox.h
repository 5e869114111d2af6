#pragma once
// The local sandbox: four test hosts in network namespaces on an isolated bridge, a real dnsmasq,
// the sample orders and key-value services, and an agent on every host (DESIGN.md, "Sandbox").
//
//   fl-net      holds the bridge flbr0; every host's veth peer is a port of it
//   fl-app      10.77.0.10  orders service :8080, agent :7070
//   fl-dns      10.77.0.2   dnsmasq :53 (dynamodb.<region>.sandbox.test), agent :7070,
//                           with --prometheus a real Prometheus :9090 scraping every service
//   fl-db-east  10.77.0.20  kv service :8000 (us-east-1), agent :7070
//   fl-db-west  10.77.0.30  kv service :8000 (us-west-2), agent :7070
//   root ns     10.77.0.1   through the veth fl-root, so the CLI reaches every host
//
// With --containers (SandboxOptions::containers), the orders and key-value services also run as
// real Podman containers, one network namespace each (fl-c-<name>) on the same bridge, see
// SandboxContainers(). Podman's state for each host lives under <run dir>/containers/<host>, and
// that host's agent discovers them through the Docker-compatible API socket served there.
//
// No host has a default route. All state lives under /run/faultline/sandbox (logs/, pids/,
// state/, ready/, certs/, inventory.yaml, sandbox.yaml) and /etc/netns/fl-*/resolv.conf. Everything
// here needs root. Other code takes names and addresses from SandboxHosts(), never hard-codes them.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace faultline::sandbox {

inline constexpr std::string_view kBridgeNamespace = "fl-net";
inline constexpr std::string_view kBridgeName = "flbr0";
inline constexpr std::string_view kRootLink = "fl-root";
inline constexpr std::string_view kRootAddress = "10.77.0.1";
inline constexpr std::string_view kSubnet = "10.77.0.0/24";
inline constexpr int kPrefixLength = 24;
inline constexpr int kAgentPort = 7070;
// Each sandbox agent serves Prometheus metrics (plain HTTP GET /metrics) on its address here.
inline constexpr int kAgentMetricsPort = 9464;
inline constexpr int kOrdersPort = 8080;
inline constexpr int kKvPort = 8000;
// `sandbox up --prometheus`: Prometheus's web/API port on the dns host.
inline constexpr int kPrometheusPort = 9090;
inline constexpr std::string_view kDomain = "sandbox.test";
inline constexpr std::string_view kPrimaryRegion = "us-east-1";
inline constexpr std::string_view kSecondaryRegion = "us-west-2";

// One test host.
struct SandboxHost {
  std::string name;         // network namespace and agent name: "fl-app"
  std::string address;      // IPv4 address of its eth0: "10.77.0.10"
  std::string role;         // agent label role: app | dns | db
  std::string region;       // agent label region on db hosts ("us-east-1"), empty elsewhere
  std::string bridge_port;  // name of the veth end in fl-net that is a port of the bridge
};

// The four hosts, in a fixed order (app, dns, db-east, db-west). Never empty.
const std::vector<SandboxHost>& SandboxHosts();
// The host named `name` ("fl-app"), or nullptr.
const SandboxHost* FindSandboxHost(std::string_view name);
// The host with `role` (and `region` when not empty), or nullptr. Example: ("db", "us-west-2").
const SandboxHost* FindSandboxHostByRole(std::string_view role, std::string_view region = "");
// "dynamodb.us-east-1.sandbox.test"
std::string DynamoDbEndpointName(std::string_view region);
// "http://10.77.0.10:8080" — the orders service as reached from the root namespace.
std::string OrdersServiceUrl();
// "http://10.77.0.2:9090" — the sandbox's Prometheus (when started with --prometheus).
std::string SandboxPrometheusUrl();

// `sandbox up --containers`: one service container. Each runs from a root filesystem built from
// the project's binaries (no image, no registry), in its own network namespace `netns` (a veth
// port of the bridge, address `address`), resolving through the sandbox's dnsmasq, and is
// discovered by the agent of `host` through that host's Podman API socket.
//   fl-orders-N   on fl-app      10.77.0.10N  labels app=orders tier=web faultline.sandbox=1
//   fl-kv-east-N  on fl-db-east  10.77.0.11N  labels app=kv tier=db region=us-east-1 ...
//   fl-kv-west-N  on fl-db-west  10.77.0.12N  labels app=kv tier=db region=us-west-2 ...
// The orders containers use dynamodb.<region>.containers.sandbox.test (ContainerEndpointName),
// which dnsmasq answers with the address of replica 1 of that region's kv containers.
struct SandboxContainer {
  std::string name;     // container name: "fl-orders-1"
  std::string service;  // "orders" | "kv"
  std::string host;     // sandbox host whose agent targets it: "fl-app"
  std::string netns;    // its network namespace: "fl-c-orders-1"
  std::string address;  // IPv4 address in kSubnet
  std::string region;   // kv: its region; orders: empty
  int port = 0;         // the service's port inside (kOrdersPort, kKvPort)
  std::vector<std::pair<std::string, std::string>> labels;  // container labels, sorted by key
};
inline constexpr int kMaxContainerReplicas = 9;
// The containers of `replicas` (1..kMaxContainerReplicas) per service and region, in start order
// (kv before orders). Empty for an out-of-range count.
std::vector<SandboxContainer> SandboxContainers(int replicas);
// "dynamodb.us-east-1.containers.sandbox.test"
std::string ContainerEndpointName(std::string_view region);
// <run dir>/containers/<host>/podman.sock: the Docker Engine API of that host's containers.
std::string ContainerApiSocket(std::string_view host);

enum class FailoverMode { kAuto, kOff };
// "auto" / "off".
const char* FailoverModeName(FailoverMode mode);

struct SandboxOptions {
  FailoverMode failover = FailoverMode::kAuto;
  int failover_threshold = 3;  // must be >= 1
  // The orders service's extra attempts of a failed dependency call (--retries), 0-100.
  int orders_retries = 0;
  // How long each db host's supervisor waits before restarting its killed key-value service.
  int db_restart_delay_ms = 1000;
  // The orders service waits this long before answering a failure (--fail-delay-ms), 0-600000:
  // a service whose failing requests are slow, to test measurement with slow failing probes.
  int orders_fail_delay_ms = 0;
  // Directory holding faultline-agent, faultline-sample-orders and faultline-sample-kv. Empty:
  // the directory of the running executable (/proc/self/exe).
  std::string bin_dir;
  // dnsmasq program; without a '/', looked up in PATH and then /usr/sbin.
  std::string dnsmasq = "dnsmasq";
  // false: start no agents (inventory.yaml then lists none). For working on the services alone.
  bool start_agents = true;
  // true: also run a real Prometheus on the dns host (kPrometheusPort) that scrapes the orders
  // and key-value services (and the agents) every second and evaluates the sandbox's alerting
  // rules (OrdersErrorRatioHigh); its config, rules and data live under <run dir>/prometheus.
  bool prometheus = false;
  // Prometheus program; without a '/', looked up in PATH and then /usr/bin.
  std::string prometheus_program = "prometheus";
  // true: also run the services as Podman containers (SandboxContainers(container_replicas)),
  // each host's Podman API served on ContainerApiSocket(host) and given to its agent with
  // --docker-socket. Needs podman and runc.
  bool containers = false;
  int container_replicas = 1;  // 1..kMaxContainerReplicas
  std::string podman = "podman";
  // How long to wait for all daemons together to become ready.
  std::chrono::milliseconds ready_timeout{20000};
};

// Builds the sandbox from scratch: first tears down whatever an earlier sandbox left (exactly
// SandboxDown), then creates namespaces, bridge, veths, addresses and resolv.conf files, starts
// dnsmasq, the services and the agents detached (each in its own session, so they survive the
// caller's exit and a Ctrl-C in its terminal), waits until each is ready (ready files; dnsmasq
// answering a query), and writes inventory.yaml and sandbox.yaml. Not idempotent in effect
// (services restart with fresh state) but safe to repeat. Errors: FAILED_PRECONDITION when not
// root, invalid options or a binary is missing; INTERNAL/DEADLINE_EXCEEDED when a step fails or a
// daemon does not become ready (the message names it and quotes its log). On any error everything
// made so far has been torn down again.
Status SandboxUp(const SandboxOptions& options);

// Removes every container of every host's Podman state under <run dir>/containers (podman rm),
// then kills every process in the sandbox's namespaces (SIGTERM, then SIGKILL after a deadline) and
// those recorded in pids/ (Podman API services included), unmounts whatever Podman left mounted
// under the run dir, deletes the namespaces (fl-c-* included), the fl-root link, /etc/netns/fl-*
// and /run/faultline/sandbox; all of it also after a crashed `up`. Idempotent: succeeds when
// nothing is there. Best effort: carries on past a failing step and returns the first error
// (INTERNAL) after trying them all.
Status SandboxDown();

// One daemon the sandbox runs.
struct SandboxProcess {
  std::string name;  // "orders", "kv-east", "dnsmasq", "agent-fl-app", ...
  std::string host;  // namespace it runs in
  int pid = 0;       // 0 when no pid file
  bool alive = false;
  std::string log_path;  // /run/faultline/sandbox/logs/<name>.log
};

struct SandboxHostStatus {
  SandboxHost host;
  bool namespace_present = false;
};

struct SandboxContainerStatus {
  SandboxContainer container;
  std::string id;  // Podman's container id; empty when Podman does not know it
  int pid = 0;     // its main process on the machine, 0 when not running
  bool running = false;
  std::string log_path;  // /run/faultline/sandbox/logs/container-<name>.log
};

struct SandboxStatus {
  enum class State { kDown, kPartial, kUp };
  State state = State::kDown;
  bool bridge_present = false;     // fl-net exists
  bool root_link_present = false;  // fl-root exists
  std::vector<SandboxHostStatus> hosts;
  std::vector<SandboxProcess> processes;  // every process the sandbox is meant to run
  std::optional<FailoverMode> failover;   // from sandbox.yaml; nullopt when unknown
  int failover_threshold = 0;
  bool agents = false;                                    // whether agents were started
  bool prometheus = false;                                // whether Prometheus was started
  bool containers = false;                                // whether --containers was given
  std::vector<SandboxContainerStatus> containers_status;  // every container meant to run
  std::vector<std::string> problems;                      // human-readable, empty when kUp or kDown
};

// Looks at namespaces, links, pid files and sandbox.yaml. kUp: everything present and every
// process alive; kDown: none of it present; kPartial: anything in between. Read-only; needs root
// only to see other users' processes.
SandboxStatus GetSandboxStatus();

// The status as JSON text (for `--output json`).
std::string SandboxStatusToJson(const SandboxStatus& status);

// True when inventory.yaml exists and every namespace is present. Cheap (no process scan): what
// `faultline run` asks to decide whether to use the sandbox's agents.
bool SandboxIsUp();

// /run/faultline/sandbox/inventory.yaml (whether or not it exists).
std::string SandboxInventoryPath();
// /run/faultline/sandbox
std::string SandboxRunDir();
// /run/faultline/sandbox/certs: SandboxUp writes a fresh development CA and certificates here
// (WriteDevCertificates, common/certificates.h) and starts every agent with mTLS from them; the
// CLI uses operator.pem when no TLS flags are given.
std::string SandboxCertsDir();
// /run/faultline/sandbox/logs/<process>.log, e.g. SandboxLogPath("orders").
std::string SandboxLogPath(std::string_view process);

}  // namespace faultline::sandbox
