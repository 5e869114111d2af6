#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox::internal {

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace {

// The programs whose processes the sandbox may own; a recorded pid whose program is not one of
// these has been reused by something else and is left alone.
const std::vector<std::string>& OwnedProgramNames() {
  static const std::vector<std::string> names = {"dnsmasq",
                                                 "faultline-agent",
                                                 "faultline-sample-kv",
                                                 "faultline-sample-orders",
                                                 "faultline-sample-supervisor",
                                                 "ip",
                                                 "podman",
                                                 "prometheus"};
  return names;
}

}  // namespace

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

std::string ProgramOf(int pid) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  if (ec) return "";
  std::string name = exe.filename().string();
  // The kernel appends " (deleted)" when the binary was replaced, e.g. by a rebuild.
  if (auto at = name.find(" (deleted)"); at != std::string::npos) name.resize(at);
  return name;
}

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

std::vector<int> NamespacePids(const std::string& ns) {
  std::vector<int> pids;
  auto r = RunProcess({"ip", "netns", "pids", ns}, 10s);
  if (!r.ok() || r->exit_code != 0) return pids;
  std::istringstream in(r->out);
  int pid = 0;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

std::vector<int> AwaitExit(std::vector<int> pids, std::chrono::steady_clock::duration grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (true) {
    std::erase_if(pids, [](int pid) { return !IsAlive(pid); });
    if (pids.empty() || std::chrono::steady_clock::now() >= deadline) return pids;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::vector<std::string> ExpectedProcessNames(bool agents, bool prometheus, bool containers) {
  std::vector<std::string> names = {"dnsmasq", "kv-east", "kv-west", "orders"};
  if (containers) {
    for (const auto& h : ContainerHosts()) names.push_back("podman-" + h);
  }
  if (agents) {
    for (const auto& h : SandboxHosts()) names.push_back("agent-" + h.name);
  }
  if (prometheus) names.push_back("prometheus");
  return names;
}

std::string HostOfProcess(const std::string& name) {
  if (name == "dnsmasq" || name == "prometheus") return FindSandboxHostByRole("dns")->name;
  if (name == "kv-east") return FindSandboxHostByRole("db", kPrimaryRegion)->name;
  if (name == "kv-west") return FindSandboxHostByRole("db", kSecondaryRegion)->name;
  if (name == "orders") return FindSandboxHostByRole("app")->name;
  if (name.rfind("agent-", 0) == 0) return name.substr(6);
  if (name.rfind("podman-", 0) == 0) return name.substr(7);
  return "";
}

std::vector<DaemonSpec> DaemonSpecs(const SandboxOptions& o, const std::string& bin_dir,
                                    const std::string& dnsmasq, const std::string& prometheus) {
  std::vector<DaemonSpec> specs;
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  const SandboxHost& app = *FindSandboxHostByRole("app");
  specs.push_back(
      {"dnsmasq", dns.name, DnsmasqArgv(dnsmasq, o.containers ? o.container_replicas : 0), ""});

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
          PidsDir() + "/" + name + "-service.pid", "--restart-delay",
          std::to_string(o.db_restart_delay_ms) + "ms", "--", bin_dir + "/faultline-sample-kv",
          "--listen", "0.0.0.0:" + std::to_string(kKvPort), "--region", h.region, "--ready-file",
          ready},
         ready});
  }
  std::string orders_ready = ReadyDir() + "/orders";
  specs.push_back(
      {"orders",
       app.name,
       {bin_dir + "/faultline-sample-orders", "--listen", "0.0.0.0:" + std::to_string(kOrdersPort),
        "--region", Str(kPrimaryRegion), "--secondary-region", Str(kSecondaryRegion), "--failover",
        FailoverModeName(o.failover), "--failover-threshold", std::to_string(o.failover_threshold),
        "--retries", std::to_string(o.orders_retries), "--fail-delay-ms",
        std::to_string(o.orders_fail_delay_ms), "--ready-file", orders_ready},
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
      const auto with_containers = ContainerHosts();
      if (o.containers && std::find(with_containers.begin(), with_containers.end(), h.name) !=
                              with_containers.end()) {
        argv.insert(argv.end(), {"--docker-socket", ContainerApiSocket(h.name)});
      }
      const std::string certs = SandboxCertsDir();
      argv.insert(argv.end(),
                  {"--tls-ca", certs + "/ca.pem", "--tls-cert", certs + "/agent.pem", "--tls-key",
                   certs + "/agent-key.pem", "--state-dir", StateDir() + "/" + h.name,
                   "--ready-file", ready, "--log-level", "info", "--metrics-listen",
                   h.address + ":" + std::to_string(kAgentMetricsPort)});
      specs.push_back({name, h.name, argv, ready});
    }
  }
  if (o.prometheus) {
    specs.push_back({"prometheus", dns.name, PrometheusArgv(prometheus), "",
                     SandboxPrometheusUrl() + "/-/ready"});
  }
  return specs;
}

Result<bp::child> StartDaemon(const std::string& ip, const DaemonSpec& spec) {
  std::string exe = ip;
  std::vector<std::string> args = {"netns", "exec", spec.host};
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  if (spec.in_root_namespace) {
    exe = FindProgram(spec.argv.front());
    if (exe.empty()) return FailedPrecondition(spec.argv.front() + " not found");
    args.assign(spec.argv.begin() + 1, spec.argv.end());
  }
  std::string log = SandboxLogPath(spec.name);
  try {
    // setsid before exec: a new session with no controlling terminal, so a Ctrl-C in the
    // caller's terminal (SIGINT to its foreground process group) does not reach the daemon.
    // Every inherited descriptor above stderr is closed at exec: a daemon outlives its caller,
    // and one that kept, say, the caller's lock on the sandbox would hold it forever.
    bp::child child(bp::exe = exe, bp::args = args, bp::std_in.close(),
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

}  // namespace faultline::sandbox::internal
