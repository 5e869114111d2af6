#pragma once
// Private to controller/sandbox: what the sandbox's parts share. The parts are
//   topology.cpp — namespaces, the bridge, the root link, per-host resolv.conf, inventory;
//   dnsmasq.cpp  — the sandbox's DNS server: its argv and its readiness check;
//   daemons.cpp  — the services and agents it runs: argv, start, pids, liveness;
//   containers.cpp — `--containers`: root filesystem, per-host Podman state and API service,
//                  the containers' namespaces and lifecycle;
//   status.cpp   — status and JSON;
//   sandbox.cpp  — up (build) and down.
// Nothing here is thread-safe beyond what the public sandbox.h promises (one caller at a time,
// under the sandbox lock).

#include <boost/process/child.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "controller/sandbox/sandbox.h"

namespace faultline::sandbox::internal {

using namespace std::chrono_literals;

inline constexpr const char* kRunDir = "/run/faultline/sandbox";
inline constexpr const char* kNetnsDir = "/run/netns";
inline constexpr const char* kEtcNetnsDir = "/etc/netns";
inline constexpr const char* kRootPeer = "v-root";  // fl-root's peer in fl-net
inline constexpr auto kTermGrace = 5s;              // agents revert their faults on SIGTERM
inline constexpr auto kKillGrace = 2s;
inline constexpr auto kPollInterval = 50ms;

inline std::string Str(std::string_view s) { return std::string(s); }

// Paths under kRunDir (topology.cpp).
std::string PidsDir();
std::string ReadyDir();
std::string StateDir();
std::string SandboxYamlPath();

// Topology (topology.cpp).
// Every namespace the sandbox creates, bridge namespace last so it is deleted last.
std::vector<std::string> AllNamespaces();
bool NamespaceExists(const std::string& ns);
bool RootLinkExists();
// Creates the bridge namespace, every host's namespace and veth, the root link, and each host's
// /etc/netns/<host>/resolv.conf. Stops at the first failing step (SandboxDown clears it).
Status CreateNetwork();
// inventory.yaml for `faultline run` (no agents: an empty list).
std::string InventoryYaml(bool agents);

// Files (sandbox.cpp).
Status WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
// The last `lines` lines of a log, for error messages.
std::string LogTail(const std::string& path, size_t lines = 8);

// DNS server (dnsmasq.cpp).
// dnsmasq's argv (program `dnsmasq` first) serving the sandbox's records on fl-dns, with
// `container_replicas` > 0 also the containers' endpoints (ContainerEndpointName).
std::vector<std::string> DnsmasqArgv(const std::string& dnsmasq, int container_replicas);
// Whether `server` answers `name` with an A record `want`; otherwise why not in `why`.
bool DnsServes(const std::string& server, const std::string& name, const std::string& want,
               std::string* why);

// Processes (daemons.cpp).
// Finds `name` in PATH, then in the usual sbin directories (root's PATH may lack them).
std::string FindProgram(const std::string& name);
std::string SelfDir();
// Reads the program name of a process ("dnsmasq"); empty when it is gone.
std::string ProgramOf(int pid);
// Alive and not a zombie. Reaps it first when it is our own child (SandboxUp's failure path).
bool IsAlive(int pid);
// Whether `pid` runs one of the programs the sandbox may own.
bool IsOwnedProgram(int pid);
int ReadPidFile(const std::string& path);
// `ip netns pids <ns>`; empty when the namespace is gone.
std::vector<int> NamespacePids(const std::string& ns);
// Waits until none of `pids` is alive or the deadline passes; returns those still alive.
std::vector<int> AwaitExit(std::vector<int> pids, std::chrono::steady_clock::duration grace);

// The processes a sandbox started with these options runs, in start order.
struct DaemonSpec {
  std::string name;
  std::string host;
  std::vector<std::string> argv;  // program and its arguments, run via `ip netns exec host`
  std::string ready_file;         // empty: readiness is checked otherwise (dnsmasq, ready_url)
  std::string ready_url = {};     // ready when GET on this URL answers 200 (Prometheus)
  // Ready when GET /version on this Docker Engine API socket answers 200 (a Podman service).
  std::string ready_api_socket = {};
  bool in_root_namespace = false;  // run in the caller's namespaces, not `ip netns exec host`
};

std::vector<std::string> ExpectedProcessNames(bool agents, bool prometheus, bool containers);
std::string HostOfProcess(const std::string& name);
std::vector<DaemonSpec> DaemonSpecs(const SandboxOptions& o, const std::string& bin_dir,
                                    const std::string& dnsmasq, const std::string& prometheus);

// Prometheus (prometheus.cpp).
// <run dir>/prometheus: prometheus.yml, rules.yml and data/.
std::string PrometheusDir();
// Writes prometheus.yml (1s scrape and evaluation interval; jobs orders, kv and, with
// `agents`, faultline-agent) and rules.yml (the sandbox's alerts) into PrometheusDir().
Status WritePrometheusConfig(bool agents);
// Prometheus's argv: its config, data directory and listen address on the dns host.
std::vector<std::string> PrometheusArgv(const std::string& program);
// Whether GET `url` answers 200 within a second; otherwise why not in `why`.
bool HttpReady(const std::string& url, std::string* why);

// Containers (containers.cpp).
// <run dir>/containers; <run dir>/containers/<host>.
std::string ContainersDir();
std::string ContainerHostDir(const std::string& host);
// Names of the fl-c-* namespaces present now (whatever the replica count of the `up` that made
// them).
std::vector<std::string> ContainerNamespacesPresent();
// The sandbox hosts with containers: fl-app, fl-db-east, fl-db-west.
std::vector<std::string> ContainerHosts();
// Builds the shared root filesystem from bin_dir's sample services, writes each host's
// containers.conf, creates each container's namespace and veth. Stops at the first error.
Status PrepareContainers(const SandboxOptions& o, const std::string& bin_dir);
// `podman system service` for `host` (its argv, via env CONTAINERS_CONF=...).
DaemonSpec PodmanServiceSpec(const std::string& podman, const std::string& host);
// `podman run -d` of every container (after the services are up). Stops at the first error.
Status StartContainers(const SandboxOptions& o, const std::string& podman);
// The argv prefix `env CONTAINERS_CONF=... podman --root ... --runroot ...` for host's state.
std::vector<std::string> PodmanArgv(const std::string& podman, const std::string& host);
// Whether GET /version on the Docker Engine API at `socket` answers 200; otherwise why not.
bool ApiSocketReady(const std::string& socket, std::string* why);
// For SandboxDown: `podman rm -f --all` in every host's state present, then (after the caller
// killed the processes) unmounts every mount below ContainersDir(), deepest first.
void RemoveContainers(const std::function<void(Status)>& note);
void UnmountContainerStorage(const std::function<void(Status)>& note);
// What Podman says about each expected container.
std::vector<SandboxContainerStatus> ContainerStatuses(int replicas);

// A started daemon. The child object is detached before it goes out of scope, whatever happens:
// the daemon must outlive this process, and SandboxDown reaps it on the failure path.
struct Started {
  DaemonSpec spec;
  boost::process::child child;
};

// Starts `spec` through `ip netns exec` in a new session, its output to its log.
Result<boost::process::child> StartDaemon(const std::string& ip, const DaemonSpec& spec);

}  // namespace faultline::sandbox::internal
