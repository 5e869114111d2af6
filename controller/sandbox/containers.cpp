// `sandbox up --containers`: the orders and key-value services as real Podman containers.
//
// No image and no registry: every container runs from one root filesystem built here from the
// project's own sample-service binaries and the shared libraries ldd lists for them. Each host
// with containers has its own Podman state (containers.conf, storage, run root, tmp dir) under
// <run dir>/containers/<host>, so the machine's own Podman is never touched and each host's
// agent discovers only its own containers, through the Docker-compatible API that
// `podman system service` serves on <run dir>/containers/<host>/podman.sock.
//
// Each container joins a network namespace made here (`--network ns:/run/netns/fl-c-<name>`)
// whose eth0 is a port of the sandbox bridge, so it is reachable from the root namespace and
// every sandbox host, and its resolver is the sandbox's dnsmasq (`--dns`). Debian's Podman 4.3
// needs `--runtime runc` here (crun refuses the hybrid cgroup layout) and an empty
// default_ulimits (its default nofile limit is above this machine's hard limit).
#include <httplib.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/process.h"
#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox {

namespace fs = std::filesystem;
using namespace internal;

namespace {

constexpr const char* kInContainerBinDir = "/usr/local/bin";
constexpr auto kPodmanTimeout = std::chrono::seconds(120);

std::string RootfsDir() { return ContainersDir() + "/rootfs"; }

// The binaries `binary` needs at run time: itself and every library ldd lists (absolute paths).
Result<std::vector<std::string>> LibrariesOf(const std::string& binary) {
  auto r = RunProcess({"ldd", binary}, std::chrono::seconds(10));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return Internal("ldd " + binary + " failed: " + r->err);
  std::vector<std::string> libs;
  std::istringstream in(r->out);
  std::string line;
  while (std::getline(in, line)) {
    std::string path;
    if (auto arrow = line.find("=> /"); arrow != std::string::npos) {
      path = line.substr(arrow + 3);
    } else if (auto slash = line.find_first_not_of(" \t");
               slash != std::string::npos && line[slash] == '/') {
      path = line.substr(slash);
    }
    if (auto space = path.find(' '); space != std::string::npos) path.resize(space);
    if (!path.empty()) libs.push_back(path);
  }
  return libs;
}

Status CopyInto(const std::string& root, const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::path dst = fs::path(root) / fs::path(to).relative_path();
  fs::create_directories(dst.parent_path(), ec);
  if (!ec) fs::copy_file(from, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) return Internal("cannot copy " + from + " into " + root + ": " + ec.message());
  return Status::Ok();
}

Status BuildRootfs(const std::string& bin_dir) {
  const std::string root = RootfsDir();
  for (const char* dir : {"etc", "proc", "sys", "dev", "tmp", "run"}) {
    std::error_code ec;
    fs::create_directories(fs::path(root) / dir, ec);
    if (ec) return Internal("cannot create " + root + "/" + dir + ": " + ec.message());
  }
  for (const char* name : {"faultline-sample-orders", "faultline-sample-kv"}) {
    const std::string binary = bin_dir + "/" + name;
    if (Status s = CopyInto(root, binary, std::string(kInContainerBinDir) + "/" + name); !s.ok()) {
      return s;
    }
    auto libs = LibrariesOf(binary);
    if (!libs.ok()) return libs.status();
    for (const auto& lib : *libs) {
      if (Status s = CopyInto(root, lib, lib); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

std::string ContainersConf(const std::string& dir) {
  return "[containers]\n"
         "default_ulimits = []\n"
         "[engine]\n"
         "runtime = \"runc\"\n"
         "cgroup_manager = \"cgroupfs\"\n"
         "events_logger = \"file\"\n"
         "tmp_dir = \"" +
         dir + "/tmp\"\n";
}

std::vector<std::string> ServiceArgv(const SandboxOptions& o, const SandboxContainer& c) {
  const std::string bin = kInContainerBinDir;
  const std::string listen = "0.0.0.0:" + std::to_string(c.port);
  if (c.service == "kv") {
    return {bin + "/faultline-sample-kv", "--listen", listen, "--region", c.region};
  }
  return {bin + "/faultline-sample-orders",
          "--listen",
          listen,
          "--region",
          Str(kPrimaryRegion),
          "--secondary-region",
          Str(kSecondaryRegion),
          "--endpoint",
          "http://" + ContainerEndpointName("{region}") + ":" + std::to_string(kKvPort),
          "--failover",
          FailoverModeName(o.failover),
          "--failover-threshold",
          std::to_string(o.failover_threshold),
          "--retries",
          std::to_string(o.orders_retries),
          "--fail-delay-ms",
          std::to_string(o.orders_fail_delay_ms)};
}

std::string BridgePortOf(const SandboxContainer& c) {
  return "v-c-" + c.netns.substr(5);  // fl-c-kv-east-1 -> v-c-kv-east-1 (at most 15 chars)
}

}  // namespace

std::vector<SandboxContainer> SandboxContainers(int replicas) {
  std::vector<SandboxContainer> out;
  if (replicas < 1 || replicas > kMaxContainerReplicas) return out;
  auto address = [](int last) { return "10.77.0." + std::to_string(last); };
  for (const char* region : {"us-east-1", "us-west-2"}) {
    const SandboxHost& db = *FindSandboxHostByRole("db", region);
    const std::string stem = std::string("kv-") + (Str(kPrimaryRegion) == region ? "east" : "west");
    const int base = Str(kPrimaryRegion) == region ? 110 : 120;
    for (int n = 1; n <= replicas; ++n) {
      const std::string id = stem + "-" + std::to_string(n);
      out.push_back(
          {"fl-" + id,
           "kv",
           db.name,
           "fl-c-" + id,
           address(base + n),
           region,
           kKvPort,
           {{"app", "kv"}, {"faultline.sandbox", "1"}, {"region", region}, {"tier", "db"}}});
    }
  }
  const SandboxHost& app = *FindSandboxHostByRole("app");
  for (int n = 1; n <= replicas; ++n) {
    const std::string id = "orders-" + std::to_string(n);
    out.push_back({"fl-" + id,
                   "orders",
                   app.name,
                   "fl-c-" + id,
                   address(100 + n),
                   "",
                   kOrdersPort,
                   {{"app", "orders"}, {"faultline.sandbox", "1"}, {"tier", "web"}}});
  }
  return out;
}

std::string ContainerEndpointName(std::string_view region) {
  return "dynamodb." + Str(region) + ".containers." + Str(kDomain);
}

std::string ContainerApiSocket(std::string_view host) {
  return ContainerHostDir(Str(host)) + "/podman.sock";
}

namespace internal {

std::string ContainersDir() { return std::string(kRunDir) + "/containers"; }
std::string ContainerHostDir(const std::string& host) { return ContainersDir() + "/" + host; }

std::vector<std::string> ContainerHosts() {
  return {FindSandboxHostByRole("app")->name, FindSandboxHostByRole("db", kPrimaryRegion)->name,
          FindSandboxHostByRole("db", kSecondaryRegion)->name};
}

std::vector<std::string> ContainerNamespacesPresent() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kNetnsDir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("fl-c-", 0) == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> PodmanArgv(const std::string& podman, const std::string& host) {
  const std::string dir = ContainerHostDir(host);
  return {"env",
          "CONTAINERS_CONF=" + dir + "/containers.conf",
          podman,
          "--root",
          dir + "/storage",
          "--runroot",
          dir + "/run"};
}

Status PrepareContainers(const SandboxOptions& o, const std::string& bin_dir) {
  if (Status s = BuildRootfs(bin_dir); !s.ok()) return s;
  for (const auto& host : ContainerHosts()) {
    const std::string dir = ContainerHostDir(host);
    for (const char* sub : {"storage", "run", "tmp"}) {
      std::error_code ec;
      fs::create_directories(dir + "/" + sub, ec);
      if (ec) return Internal("cannot create " + dir + "/" + sub + ": " + ec.message());
    }
    if (Status s = WriteFile(dir + "/containers.conf", ContainersConf(dir)); !s.ok()) return s;
  }
  const std::string net = Str(kBridgeNamespace);
  const std::string prefix = "/" + std::to_string(kPrefixLength);
  for (const auto& c : SandboxContainers(o.container_replicas)) {
    const std::string port = BridgePortOf(c);
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "netns", "add", c.netns},
        {"ip", "-n", c.netns, "link", "set", "lo", "up"},
        {"ip", "-n", net, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
         c.netns},
        {"ip", "-n", net, "link", "set", port, "master", Str(kBridgeName)},
        {"ip", "-n", net, "link", "set", port, "up"},
        {"ip", "-n", c.netns, "addr", "add", c.address + prefix, "dev", "eth0"},
        {"ip", "-n", c.netns, "link", "set", "eth0", "up"},
    };
    for (const auto& argv : steps) {
      if (Status s = RunChecked(argv); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

DaemonSpec PodmanServiceSpec(const std::string& podman, const std::string& host) {
  DaemonSpec spec;
  spec.name = "podman-" + host;
  spec.host = host;
  spec.argv = PodmanArgv(podman, host);
  spec.argv.insert(spec.argv.end(),
                   {"system", "service", "--time=0", "unix://" + ContainerApiSocket(host)});
  spec.ready_api_socket = ContainerApiSocket(host);
  spec.in_root_namespace = true;
  return spec;
}

Status StartContainers(const SandboxOptions& o, const std::string& podman) {
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  for (const auto& c : SandboxContainers(o.container_replicas)) {
    std::vector<std::string> argv = PodmanArgv(podman, c.host);
    argv.insert(argv.end(), {"run", "-d", "--runtime", "runc", "--name", c.name});
    for (const auto& [k, v] : c.labels) argv.insert(argv.end(), {"--label", k + "=" + v});
    argv.insert(argv.end(),
                {"--network", "ns:" + std::string(kNetnsDir) + "/" + c.netns, "--dns", dns.address,
                 "--log-driver", "k8s-file", "--log-opt",
                 "path=" + SandboxLogPath("container-" + c.name), "--rootfs", RootfsDir()});
    for (auto& a : ServiceArgv(o, c)) argv.push_back(std::move(a));
    if (Status s = RunChecked(argv, kPodmanTimeout); !s.ok()) {
      return Internal("cannot start container " + c.name + ": " + s.message());
    }
  }
  return Status::Ok();
}

bool ApiSocketReady(const std::string& socket, std::string* why) {
  if (!fs::exists(socket)) {
    *why = socket + " does not exist yet";
    return false;
  }
  httplib::Client client(socket);
  client.set_address_family(AF_UNIX);
  // The socket path is no valid Host header: Podman answers 400 to it.
  client.set_default_headers({{"Host", "localhost"}});
  client.set_connection_timeout(std::chrono::seconds(1));
  // The first answer can take seconds: the service initialises lazily.
  client.set_read_timeout(std::chrono::seconds(20));
  auto res = client.Get("/v1.41/version");
  if (!res) {
    *why = "GET /version on " + socket + ": " + httplib::to_string(res.error());
    return false;
  }
  if (res->status != 200) {
    *why = "GET /version on " + socket + " answered " + std::to_string(res->status);
    return false;
  }
  return true;
}

void RemoveContainers(const std::function<void(Status)>& note) {
  std::error_code ec;
  if (!fs::is_directory(ContainersDir(), ec)) return;
  // Each container's monitor (conmon) outlives `podman rm` by a moment; wait for those of our
  // state so that nothing of the containers is left when this returns.
  std::vector<int> monitors;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (ProgramOf(std::stoi(pid)) != "conmon") continue;
    if (ReadFile("/proc/" + pid + "/cmdline").find(ContainersDir() + "/") != std::string::npos) {
      monitors.push_back(std::stoi(pid));
    }
  }
  const std::string podman = FindProgram("podman");
  for (const auto& entry : fs::directory_iterator(ContainersDir(), ec)) {
    const std::string host = entry.path().filename().string();
    if (!fs::exists(entry.path() / "containers.conf")) continue;
    if (podman.empty()) {
      note(Internal("podman not found: cannot remove the containers of " + host));
      continue;
    }
    std::vector<std::string> argv = PodmanArgv(podman, host);
    argv.insert(argv.end(), {"rm", "-f", "-t", "0", "--all"});
    note(RunChecked(argv, kPodmanTimeout));
  }
  for (int pid : AwaitExit(monitors, kTermGrace)) kill(pid, SIGKILL);
}

void UnmountContainerStorage(const std::function<void(Status)>& note) {
  // Podman's overlay driver bind-mounts its storage onto itself and mounts each container's
  // root: unmount everything below our state, deepest first (lazily: nothing uses it now).
  const std::string below = ContainersDir() + "/";
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string source, target;
    fields >> source >> target;
    if (target.rfind(below, 0) == 0) mounts.push_back(target);
  }
  std::sort(mounts.rbegin(), mounts.rend());
  for (const auto& m : mounts) {
    if (umount2(m.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      note(Internal("cannot unmount " + m + ": " + std::strerror(errno)));
    }
  }
}

std::vector<SandboxContainerStatus> ContainerStatuses(int replicas) {
  struct Seen {
    std::string id;
    int pid = 0;
    bool running = false;
  };
  std::map<std::string, Seen> seen;
  const std::string podman = FindProgram("podman");
  for (const auto& host : ContainerHosts()) {
    if (podman.empty() || !fs::exists(ContainerHostDir(host) + "/containers.conf")) continue;
    std::vector<std::string> argv = PodmanArgv(podman, host);
    argv.insert(argv.end(), {"ps", "-a", "--format", "json"});
    auto r = RunProcess(argv, std::chrono::seconds(20));
    if (!r.ok() || r->exit_code != 0) continue;
    auto list = nlohmann::json::parse(r->out, nullptr, /*allow_exceptions=*/false);
    if (!list.is_array()) continue;
    for (const auto& c : list) {
      if (!c.contains("Names") || !c["Names"].is_array() || c["Names"].empty()) continue;
      Seen s;
      s.id = c.value("Id", "");
      s.running = c.value("State", "") == "running";
      s.pid = s.running ? c.value("Pid", 0) : 0;
      seen[c["Names"][0].get<std::string>()] = s;
    }
  }
  std::vector<SandboxContainerStatus> out;
  for (const auto& c : SandboxContainers(replicas)) {
    SandboxContainerStatus st;
    st.container = c;
    st.log_path = SandboxLogPath("container-" + c.name);
    if (auto it = seen.find(c.name); it != seen.end()) {
      st.id = it->second.id;
      st.pid = it->second.pid;
      st.running = it->second.running;
    }
    out.push_back(st);
  }
  return out;
}

}  // namespace internal
}  // namespace faultline::sandbox
