#include "controller/sandbox/sandbox.h"

#include <fcntl.h>
#include <ldns/ldns.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/process.h"

namespace faultline::sandbox {

namespace bp = boost::process;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kRunDir = "/run/faultline/sandbox";
constexpr const char* kNetnsDir = "/run/netns";
constexpr const char* kEtcNetnsDir = "/etc/netns";
constexpr const char* kRootPeer = "v-root";  // fl-root's peer in fl-net
constexpr auto kTermGrace = 5s;              // agents revert their faults on SIGTERM
constexpr auto kKillGrace = 2s;
constexpr auto kPollInterval = 50ms;

// The programs whose processes the sandbox may own; a recorded pid whose program is not one of
// these has been reused by something else and is left alone.
const std::vector<std::string>& OwnedProgramNames() {
  static const std::vector<std::string> names = {"dnsmasq",
                                                 "faultline-agent",
                                                 "faultline-sample-kv",
                                                 "faultline-sample-orders",
                                                 "faultline-sample-supervisor",
                                                 "ip"};
  return names;
}

std::string Str(std::string_view s) { return std::string(s); }

std::string PidsDir() { return std::string(kRunDir) + "/pids"; }
std::string ReadyDir() { return std::string(kRunDir) + "/ready"; }
std::string StateDir() { return std::string(kRunDir) + "/state"; }
std::string SandboxYamlPath() { return std::string(kRunDir) + "/sandbox.yaml"; }

// Every namespace the sandbox creates, bridge namespace last so it is deleted last.
std::vector<std::string> AllNamespaces() {
  std::vector<std::string> names;
  for (const auto& h : SandboxHosts()) names.push_back(h.name);
  names.push_back(Str(kBridgeNamespace));
  return names;
}

bool NamespaceExists(const std::string& ns) { return fs::exists(fs::path(kNetnsDir) / ns); }
bool RootLinkExists() { return fs::exists(fs::path("/sys/class/net") / Str(kRootLink)); }

// Finds `name` in PATH, then in the usual sbin directories (root's PATH may lack them).
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  auto found = bp::search_path(name);
  if (!found.empty()) return found.string();
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    fs::path p = fs::path(dir) / name;
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

std::string SelfDir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : self.parent_path().string();
}

Status WriteFile(const std::string& path, const std::string& content) {
  return WriteFileAtomically(path, content, 0644);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last `lines` lines of a log, for error messages.
std::string LogTail(const std::string& path, size_t lines = 8) {
  std::string text = ReadFile(path);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (size_t n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
  }
  if (pos != std::string::npos && pos < text.size()) text = text.substr(pos + 1);
  return text;
}

// Reads the program name of a process ("dnsmasq"); empty when it is gone.
std::string ProgramOf(int pid) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  if (ec) return "";
  std::string name = exe.filename().string();
  // The kernel appends " (deleted)" when the binary was replaced, e.g. by a rebuild.
  if (auto at = name.find(" (deleted)"); at != std::string::npos) name.resize(at);
  return name;
}

// Alive and not a zombie. Reaps it first when it is our own child (SandboxUp's failure path).
bool IsAlive(int pid) {
  if (pid <= 0) return false;
  int st = 0;
  waitpid(pid, &st, WNOHANG);
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') {
    return false;
  }
  return true;
}

bool IsOwnedProgram(int pid) {
  std::string program = ProgramOf(pid);
  for (const auto& n : OwnedProgramNames()) {
    if (program == n) return true;
  }
  return false;
}

int ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  if (!(in >> pid)) return 0;
  return pid;
}

// `ip netns pids <ns>`; empty when the namespace is gone.
std::vector<int> NamespacePids(const std::string& ns) {
  std::vector<int> pids;
  auto r = RunProcess({"ip", "netns", "pids", ns}, 10s);
  if (!r.ok() || r->exit_code != 0) return pids;
  std::istringstream in(r->out);
  int pid = 0;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

// Waits until none of `pids` is alive or the deadline passes; returns those still alive.
std::vector<int> AwaitExit(std::vector<int> pids, std::chrono::steady_clock::duration grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (true) {
    std::erase_if(pids, [](int pid) { return !IsAlive(pid); });
    if (pids.empty() || std::chrono::steady_clock::now() >= deadline) return pids;
    std::this_thread::sleep_for(kPollInterval);
  }
}

// The processes a sandbox started with these options runs, in start order.
struct DaemonSpec {
  std::string name;
  std::string host;
  std::vector<std::string> argv;  // program and its arguments, run via `ip netns exec host`
  std::string ready_file;         // empty: readiness is checked otherwise (dnsmasq)
};

std::vector<std::string> ExpectedProcessNames(bool agents) {
  std::vector<std::string> names = {"dnsmasq", "kv-east", "kv-west", "orders"};
  if (agents) {
    for (const auto& h : SandboxHosts()) names.push_back("agent-" + h.name);
  }
  return names;
}

std::string HostOfProcess(const std::string& name) {
  if (name == "dnsmasq") return FindSandboxHostByRole("dns")->name;
  if (name == "kv-east") return FindSandboxHostByRole("db", kPrimaryRegion)->name;
  if (name == "kv-west") return FindSandboxHostByRole("db", kSecondaryRegion)->name;
  if (name == "orders") return FindSandboxHostByRole("app")->name;
  if (name.rfind("agent-", 0) == 0) return name.substr(6);
  return "";
}

std::vector<DaemonSpec> DaemonSpecs(const SandboxOptions& o, const std::string& bin_dir,
                                    const std::string& dnsmasq) {
  std::vector<DaemonSpec> specs;
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  const SandboxHost& app = *FindSandboxHostByRole("app");
  std::vector<std::string> dnsmasq_argv = {
      dnsmasq,
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--pid-file",  // no value: no pid file of its own; ours is in pids/
      "--listen-address=" + dns.address,
      "--bind-interfaces",
      "--port=53",
      "--no-resolv",
      "--no-hosts",
      "--no-poll",
      "--local=/" + Str(kDomain) + "/",
      "--local-ttl=0",
      "--log-queries",
      "--log-facility=-",
  };
  for (const auto& h : SandboxHosts()) {
    if (h.role == "db") {
      dnsmasq_argv.push_back("--host-record=" + DynamoDbEndpointName(h.region) + "," + h.address);
    }
  }
  // A CNAME to the west endpoint, for DNS faults that follow CNAME chains.
  dnsmasq_argv.push_back("--cname=dynamodb-alias." + Str(kDomain) + "," +
                         DynamoDbEndpointName("us-west-2"));
  // Debian's dnsmasq drops privileges to the user "dnsmasq", which only the full dnsmasq
  // package creates; dnsmasq-base alone needs another unprivileged user.
  if (getpwnam("dnsmasq") == nullptr) dnsmasq_argv.push_back("--user=nobody");
  specs.push_back({"dnsmasq", dns.name, dnsmasq_argv, ""});

  for (const auto& h : SandboxHosts()) {
    if (h.role != "db") continue;
    std::string name = h.region == kPrimaryRegion ? "kv-east" : "kv-west";
    std::string ready = ReadyDir() + "/" + name;
    // Under a restart-on-exit supervisor (like systemd's Restart=always), so a process fault
    // that kills the service shows downtime and then a restart. The service's own pid is in
    // pids/<name>-service.pid (for pidfile selectors).
    specs.push_back(
        {name,
         h.name,
         {bin_dir + "/faultline-sample-supervisor", "--pid-file",
          PidsDir() + "/" + name + "-service.pid", "--restart-delay", "1s", "--",
          bin_dir + "/faultline-sample-kv", "--listen", "0.0.0.0:" + std::to_string(kKvPort),
          "--region", h.region, "--ready-file", ready},
         ready});
  }
  std::string orders_ready = ReadyDir() + "/orders";
  specs.push_back(
      {"orders",
       app.name,
       {bin_dir + "/faultline-sample-orders", "--listen", "0.0.0.0:" + std::to_string(kOrdersPort),
        "--region", Str(kPrimaryRegion), "--secondary-region", Str(kSecondaryRegion), "--failover",
        FailoverModeName(o.failover), "--failover-threshold", std::to_string(o.failover_threshold),
        "--retries", std::to_string(o.orders_retries), "--ready-file", orders_ready},
       orders_ready});
  if (o.start_agents) {
    for (const auto& h : SandboxHosts()) {
      std::string name = "agent-" + h.name;
      std::string ready = ReadyDir() + "/" + name;
      std::vector<std::string> argv = {bin_dir + "/faultline-agent",
                                       "--listen",
                                       h.address + ":" + std::to_string(kAgentPort),
                                       "--name",
                                       h.name,
                                       "--label",
                                       "host=" + h.name,
                                       "--label",
                                       "role=" + h.role};
      if (!h.region.empty()) argv.insert(argv.end(), {"--label", "region=" + h.region});
      const std::string certs = SandboxCertsDir();
      argv.insert(argv.end(),
                  {"--tls-ca", certs + "/ca.pem", "--tls-cert", certs + "/agent.pem", "--tls-key",
                   certs + "/agent-key.pem", "--state-dir", StateDir() + "/" + h.name,
                   "--ready-file", ready, "--log-level", "info", "--metrics-listen",
                   h.address + ":" + std::to_string(kAgentMetricsPort)});
      specs.push_back({name, h.name, argv, ready});
    }
  }
  return specs;
}

// Asks dnsmasq (from the root namespace, over the bridge) for the east endpoint and checks the
// answer, so "ready" means it serves the sandbox's records, not merely that it is running.
bool DnsServes(const std::string& server, const std::string& name, const std::string& want,
               std::string* why) {
  ldns_resolver* res = ldns_resolver_new();
  if (res == nullptr) {
    *why = "ldns_resolver_new failed";
    return false;
  }
  ldns_rdf* ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, server.c_str());
  ldns_resolver_push_nameserver(res, ns);
  ldns_rdf_deep_free(ns);
  ldns_resolver_set_retry(res, 1);
  ldns_resolver_set_timeout(res, timeval{0, 300000});
  ldns_rdf* qname = ldns_dname_new_frm_str(name.c_str());
  ldns_pkt* pkt = nullptr;
  ldns_status s =
      ldns_resolver_query_status(&pkt, res, qname, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
  bool ok = false;
  if (s != LDNS_STATUS_OK || pkt == nullptr) {
    *why = std::string("no answer: ") + ldns_get_errorstr_by_id(s);
  } else if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR) {
    *why = "rcode " + std::to_string(ldns_pkt_get_rcode(pkt));
  } else {
    ldns_rr_list* rrs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_A, LDNS_SECTION_ANSWER);
    for (size_t i = 0; rrs != nullptr && i < ldns_rr_list_rr_count(rrs); ++i) {
      char* text = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(rrs, i), 0));
      if (text != nullptr && want == text) ok = true;
      free(text);
    }
    if (rrs != nullptr) ldns_rr_list_deep_free(rrs);
    if (!ok) *why = "answer does not contain " + want;
  }
  if (pkt != nullptr) ldns_pkt_free(pkt);
  ldns_rdf_deep_free(qname);
  ldns_resolver_deep_free(res);
  return ok;
}

// A started daemon. The child object is detached before it goes out of scope, whatever happens:
// the daemon must outlive this process, and SandboxDown reaps it on the failure path.
struct Started {
  DaemonSpec spec;
  bp::child child;
};

Result<bp::child> StartDaemon(const std::string& ip, const DaemonSpec& spec) {
  std::vector<std::string> args = {"netns", "exec", spec.host};
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::string log = SandboxLogPath(spec.name);
  try {
    // setsid before exec: a new session with no controlling terminal, so a Ctrl-C in the
    // caller's terminal (SIGINT to its foreground process group) does not reach the daemon.
    // Every inherited descriptor above stderr is closed at exec: a daemon outlives its caller,
    // and one that kept, say, the caller's lock on the sandbox would hold it forever.
    bp::child child(bp::exe = ip, bp::args = args, bp::std_in.close(),
                    (bp::std_out & bp::std_err) > boost::filesystem::path(log),
                    bp::extend::on_exec_setup([](auto&) {
                      setsid();
                      close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                    }));
    return child;
  } catch (const std::exception& e) {
    return Internal("cannot start " + spec.name + " (" + ArgvToString(spec.argv) +
                    "): " + e.what());
  }
}

Status CreateNetwork() {
  const std::string net = Str(kBridgeNamespace);
  const std::string br = Str(kBridgeName);
  const std::string prefix = "/" + std::to_string(kPrefixLength);
  std::vector<std::vector<std::string>> steps = {
      {"ip", "netns", "add", net},
      {"ip", "-n", net, "link", "set", "lo", "up"},
      {"ip", "-n", net, "link", "add", br, "type", "bridge"},
      {"ip", "-n", net, "link", "set", br, "up"},
  };
  for (const auto& h : SandboxHosts()) {
    std::vector<std::vector<std::string>> host_steps = {
        {"ip", "netns", "add", h.name},
        {"ip", "-n", h.name, "link", "set", "lo", "up"},
        {"ip", "-n", net, "link", "add", h.bridge_port, "type", "veth", "peer", "name", "eth0",
         "netns", h.name},
        {"ip", "-n", net, "link", "set", h.bridge_port, "master", br},
        {"ip", "-n", net, "link", "set", h.bridge_port, "up"},
        {"ip", "-n", h.name, "addr", "add", h.address + prefix, "dev", "eth0"},
        {"ip", "-n", h.name, "link", "set", "eth0", "up"},
    };
    steps.insert(steps.end(), host_steps.begin(), host_steps.end());
  }
  const std::string root = Str(kRootLink);
  std::vector<std::vector<std::string>> root_steps = {
      {"ip", "link", "add", root, "type", "veth", "peer", "name", kRootPeer, "netns", net},
      {"ip", "-n", net, "link", "set", kRootPeer, "master", br},
      {"ip", "-n", net, "link", "set", kRootPeer, "up"},
      {"ip", "addr", "add", Str(kRootAddress) + prefix, "dev", root},
      {"ip", "link", "set", root, "up"},
  };
  steps.insert(steps.end(), root_steps.begin(), root_steps.end());
  for (const auto& argv : steps) {
    if (Status s = RunChecked(argv); !s.ok()) return s;
  }

  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  for (const auto& h : SandboxHosts()) {
    fs::path dir = fs::path(kEtcNetnsDir) / h.name;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Internal("cannot create " + dir.string() + ": " + ec.message());
    if (Status s = WriteFile((dir / "resolv.conf").string(), "nameserver " + dns.address + "\n");
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

std::string InventoryYaml(bool agents) {
  if (!agents) return "agents: []\n";
  std::string out = "agents:\n";
  for (const auto& h : SandboxHosts()) {
    out += "  - name: " + h.name + "\n";
    out += "    address: " + h.address + ":" + std::to_string(kAgentPort) + "\n";
    out += "    labels: {host: " + h.name + ", role: " + h.role;
    if (!h.region.empty()) out += ", region: " + h.region;
    out += "}\n";
  }
  return out;
}

Status Build(const SandboxOptions& o, std::vector<Started>& started) {
  std::string bin_dir = o.bin_dir.empty() ? SelfDir() : o.bin_dir;
  std::string dnsmasq = FindProgram(o.dnsmasq);
  std::string ip = FindProgram("ip");
  if (ip.empty()) return FailedPrecondition("the 'ip' program (iproute2) is not installed");
  if (dnsmasq.empty()) {
    return FailedPrecondition("dnsmasq not found (install the Debian package dnsmasq-base)");
  }
  std::vector<std::string> binaries = {"faultline-sample-kv", "faultline-sample-orders",
                                       "faultline-sample-supervisor"};
  if (o.start_agents) binaries.push_back("faultline-agent");
  for (const auto& b : binaries) {
    std::string p = bin_dir + "/" + b;
    if (access(p.c_str(), X_OK) != 0) {
      return FailedPrecondition(p + " not found or not executable (build it, or pass --bin-dir)");
    }
  }

  for (const auto& dir : {PidsDir(), ReadyDir(), StateDir(), std::string(kRunDir) + "/logs"}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  }
  for (const auto& h : SandboxHosts()) fs::create_directories(fs::path(StateDir()) / h.name);
  if (o.start_agents) {
    // A fresh CA per `up`: nothing signed by an earlier sandbox is trusted by this one.
    DevCertificateOptions certs;
    certs.overwrite = true;
    certs.extra_agent_sans.push_back(Str(kRootAddress));
    for (const auto& h : SandboxHosts()) certs.extra_agent_sans.push_back(h.address);
    if (Status s = WriteDevCertificates(SandboxCertsDir(), certs); !s.ok()) {
      return Internal("sandbox certificates: " + s.message());
    }
  }
  if (Status s = WriteFile(SandboxYamlPath(),
                           std::string("failover: ") + FailoverModeName(o.failover) +
                               "\nfailover_threshold: " + std::to_string(o.failover_threshold) +
                               "\nagents: " + (o.start_agents ? "true" : "false") + "\nbin_dir: " +
                               bin_dir + "\norders_url: " + OrdersServiceUrl() + "\n");
      !s.ok()) {
    return s;
  }

  spdlog::debug("sandbox: creating namespaces and bridge");
  if (Status s = CreateNetwork(); !s.ok()) return s;

  for (const auto& spec : DaemonSpecs(o, bin_dir, dnsmasq)) {
    spdlog::debug("sandbox: starting " + spec.name + " in " + spec.host + ": " +
                  ArgvToString(spec.argv));
    auto child = StartDaemon(ip, spec);
    if (!child.ok()) return child.status();
    started.push_back({spec, std::move(*child)});
    if (Status s = WriteFile(PidsDir() + "/" + spec.name + ".pid",
                             std::to_string(started.back().child.id()) + "\n");
        !s.ok()) {
      return s;
    }
  }

  // Await readiness of all daemons together under one deadline.
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  const SandboxHost& east = *FindSandboxHostByRole("db", kPrimaryRegion);
  auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
  for (auto& s : started) {
    std::string why = "not ready";
    while (true) {
      std::error_code ec;
      if (!s.child.running(ec)) {
        return Internal(s.spec.name + " in " + s.spec.host + " exited (code " +
                        std::to_string(s.child.exit_code()) + ") before it was ready; " +
                        SandboxLogPath(s.spec.name) + " ends with:\n" +
                        LogTail(SandboxLogPath(s.spec.name)));
      }
      bool ready =
          s.spec.ready_file.empty()
              ? DnsServes(dns.address, DynamoDbEndpointName(east.region), east.address, &why)
              : fs::exists(s.spec.ready_file);
      if (ready) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        return DeadlineExceeded(s.spec.name + " in " + s.spec.host + " was not ready within " +
                                std::to_string(o.ready_timeout.count()) + " ms (" + why + "); " +
                                SandboxLogPath(s.spec.name) + " ends with:\n" +
                                LogTail(SandboxLogPath(s.spec.name)));
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    spdlog::debug("sandbox: " + s.spec.name + " ready");
  }
  return WriteFile(SandboxInventoryPath(), InventoryYaml(o.start_agents));
}

}  // namespace

const std::vector<SandboxHost>& SandboxHosts() {
  static const std::vector<SandboxHost> hosts = {
      {"fl-app", "10.77.0.10", "app", "", "v-app"},
      {"fl-dns", "10.77.0.2", "dns", "", "v-dns"},
      {"fl-db-east", "10.77.0.20", "db", "us-east-1", "v-db-east"},
      {"fl-db-west", "10.77.0.30", "db", "us-west-2", "v-db-west"},
  };
  return hosts;
}

const SandboxHost* FindSandboxHost(std::string_view name) {
  for (const auto& h : SandboxHosts()) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

const SandboxHost* FindSandboxHostByRole(std::string_view role, std::string_view region) {
  for (const auto& h : SandboxHosts()) {
    if (h.role == role && (region.empty() || h.region == region)) return &h;
  }
  return nullptr;
}

std::string DynamoDbEndpointName(std::string_view region) {
  return "dynamodb." + Str(region) + "." + Str(kDomain);
}

std::string OrdersServiceUrl() {
  return "http://" + FindSandboxHostByRole("app")->address + ":" + std::to_string(kOrdersPort);
}

const char* FailoverModeName(FailoverMode mode) {
  return mode == FailoverMode::kAuto ? "auto" : "off";
}

std::string SandboxInventoryPath() { return std::string(kRunDir) + "/inventory.yaml"; }
std::string SandboxRunDir() { return kRunDir; }
std::string SandboxCertsDir() { return std::string(kRunDir) + "/certs"; }
std::string SandboxLogPath(std::string_view process) {
  return std::string(kRunDir) + "/logs/" + Str(process) + ".log";
}

Status SandboxUp(const SandboxOptions& options) {
  if (geteuid() != 0) return FailedPrecondition("the sandbox needs root (network namespaces)");
  if (options.orders_retries < 0 || options.orders_retries > 100) {
    return FailedPrecondition("orders retries must be 0 to 100");
  }
  if (options.failover_threshold < 1) {
    return FailedPrecondition("failover threshold must be at least 1");
  }
  if (Status s = SandboxDown(); !s.ok()) {
    return Internal("cannot clear the previous sandbox: " + s.message());
  }
  std::vector<Started> started;
  Status s = Build(options, started);
  for (auto& st : started) st.child.detach();
  if (s.ok()) return s;
  spdlog::debug("sandbox: up failed, tearing down: " + s.message());
  if (Status down = SandboxDown(); !down.ok()) {
    return Status(s.code(),
                  s.message() + "\n(and tearing down failed too: " + down.message() + ")");
  }
  return s;
}

Status SandboxDown() {
  if (geteuid() != 0) return FailedPrecondition("the sandbox needs root (network namespaces)");
  Status first;
  auto note = [&first](Status s) {
    if (!s.ok()) {
      spdlog::debug("sandbox down: " + s.message());
      if (first.ok()) first = std::move(s);
    }
  };

  // Every process in our namespaces, plus those recorded in pids/ (a process keeps a namespace
  // alive even after its name is deleted, so the namespace alone may not find them).
  std::vector<int> pids;
  for (const auto& ns : AllNamespaces()) {
    if (NamespaceExists(ns)) {
      for (int pid : NamespacePids(ns)) pids.push_back(pid);
    }
  }
  std::error_code ec;
  if (fs::is_directory(PidsDir(), ec)) {
    for (const auto& entry : fs::directory_iterator(PidsDir(), ec)) {
      int pid = ReadPidFile(entry.path().string());
      if (pid > 0 && IsAlive(pid) && IsOwnedProgram(pid)) pids.push_back(pid);
    }
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  for (int pid : pids) kill(pid, SIGTERM);
  auto left = AwaitExit(pids, kTermGrace);
  for (int pid : left) {
    spdlog::debug("sandbox down: pid " + std::to_string(pid) + " (" + ProgramOf(pid) +
                  ") ignored SIGTERM, killing");
    kill(pid, SIGKILL);
  }
  left = AwaitExit(left, kKillGrace);
  if (!left.empty())
    note(Internal("process " + std::to_string(left.front()) + " survived SIGKILL"));

  // fl-root first: deleting it here is synchronous, whereas a namespace's links go away in the
  // kernel's asynchronous namespace cleanup, which could race a following `sandbox up`.
  if (RootLinkExists()) note(RunChecked({"ip", "link", "del", Str(kRootLink)}));
  for (const auto& ns : AllNamespaces()) {
    if (NamespaceExists(ns)) note(RunChecked({"ip", "netns", "del", ns}));
  }
  for (const auto& ns : AllNamespaces()) {
    fs::path dir = fs::path(kEtcNetnsDir) / ns;
    fs::remove_all(dir, ec);
    if (ec) note(Internal("cannot remove " + dir.string() + ": " + ec.message()));
  }
  fs::remove_all(kRunDir, ec);
  if (ec) note(Internal(std::string("cannot remove ") + kRunDir + ": " + ec.message()));
  return first;
}

SandboxStatus GetSandboxStatus() {
  SandboxStatus st;
  st.bridge_present = NamespaceExists(Str(kBridgeNamespace));
  st.root_link_present = RootLinkExists();
  bool any = st.bridge_present || st.root_link_present || fs::exists(kRunDir);
  bool all = st.bridge_present && st.root_link_present;
  if (!st.bridge_present) st.problems.push_back("namespace fl-net (bridge) missing");
  if (!st.root_link_present) st.problems.push_back("link fl-root missing");
  for (const auto& h : SandboxHosts()) {
    SandboxHostStatus hs{h, NamespaceExists(h.name)};
    any = any || hs.namespace_present;
    all = all && hs.namespace_present;
    if (!hs.namespace_present) st.problems.push_back("namespace " + h.name + " missing");
    st.hosts.push_back(hs);
  }

  bool config_read = false;
  try {
    if (fs::exists(SandboxYamlPath())) {
      YAML::Node y = YAML::LoadFile(SandboxYamlPath());
      std::string mode = y["failover"].as<std::string>("");
      if (mode == "auto") st.failover = FailoverMode::kAuto;
      if (mode == "off") st.failover = FailoverMode::kOff;
      st.failover_threshold = y["failover_threshold"].as<int>(0);
      st.agents = y["agents"].as<bool>(false);
      config_read = true;
    }
  } catch (const std::exception& e) {
    st.problems.push_back(SandboxYamlPath() + " unreadable: " + e.what());
  }
  if (!config_read) {
    all = false;
    st.agents = true;  // report on the full set
  }
  if (!fs::exists(SandboxInventoryPath())) {
    all = false;
    st.problems.push_back(SandboxInventoryPath() + " missing");
  }

  for (const auto& name : ExpectedProcessNames(st.agents)) {
    SandboxProcess p;
    p.name = name;
    p.host = HostOfProcess(name);
    p.log_path = SandboxLogPath(name);
    p.pid = ReadPidFile(PidsDir() + "/" + name + ".pid");
    p.alive = p.pid > 0 && IsAlive(p.pid) && IsOwnedProgram(p.pid);
    any = any || p.alive;
    if (!p.alive) {
      all = false;
      st.problems.push_back(name + " in " + p.host + " is not running");
    }
    st.processes.push_back(p);
  }
  if (all) {
    st.state = SandboxStatus::State::kUp;
    st.problems.clear();
  } else if (any) {
    st.state = SandboxStatus::State::kPartial;
  } else {
    st.state = SandboxStatus::State::kDown;
    st.problems.clear();
  }
  return st;
}

std::string SandboxStatusToJson(const SandboxStatus& st) {
  using nlohmann::json;
  const char* state = st.state == SandboxStatus::State::kUp        ? "up"
                      : st.state == SandboxStatus::State::kPartial ? "partial"
                                                                   : "down";
  json hosts = json::array();
  for (const auto& h : st.hosts) {
    hosts.push_back({{"name", h.host.name},
                     {"address", h.host.address},
                     {"role", h.host.role},
                     {"region", h.host.region.empty() ? json(nullptr) : json(h.host.region)},
                     {"namespace_present", h.namespace_present}});
  }
  json processes = json::array();
  for (const auto& p : st.processes) {
    processes.push_back({{"name", p.name},
                         {"host", p.host},
                         {"pid", p.pid > 0 ? json(p.pid) : json(nullptr)},
                         {"alive", p.alive},
                         {"log", p.log_path}});
  }
  json out = {{"state", state},
              {"bridge_present", st.bridge_present},
              {"root_link_present", st.root_link_present},
              {"root_address", Str(kRootAddress)},
              {"failover", st.failover ? json(FailoverModeName(*st.failover)) : json(nullptr)},
              {"failover_threshold", st.failover_threshold},
              {"agents", st.agents},
              {"inventory", SandboxInventoryPath()},
              {"hosts", hosts},
              {"processes", processes},
              {"problems", st.problems}};
  return out.dump(2);
}

bool SandboxIsUp() {
  if (!fs::exists(SandboxInventoryPath())) return false;
  for (const auto& ns : AllNamespaces()) {
    if (!NamespaceExists(ns)) return false;
  }
  return true;
}

}  // namespace faultline::sandbox
