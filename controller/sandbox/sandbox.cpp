#include "controller/sandbox/sandbox.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/process.h"
#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox {

namespace fs = std::filesystem;
using namespace internal;

namespace internal {

Status WriteFile(const std::string& path, const std::string& content) {
  return WriteFileAtomically(path, content, 0644);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string LogTail(const std::string& path, size_t lines) {
  std::string text = ReadFile(path);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (size_t n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
  }
  if (pos != std::string::npos && pos < text.size()) text = text.substr(pos + 1);
  return text;
}

}  // namespace internal

namespace {

Status Build(const SandboxOptions& o, std::vector<Started>& started) {
  std::string bin_dir = o.bin_dir.empty() ? SelfDir() : o.bin_dir;
  std::string dnsmasq = FindProgram(o.dnsmasq);
  std::string ip = FindProgram("ip");
  if (ip.empty()) return FailedPrecondition("the 'ip' program (iproute2) is not installed");
  if (dnsmasq.empty()) {
    return FailedPrecondition("dnsmasq not found (install the Debian package dnsmasq-base)");
  }
  std::string prometheus;
  if (o.prometheus) {
    prometheus = FindProgram(o.prometheus_program);
    if (prometheus.empty()) {
      return FailedPrecondition(
          "prometheus not found (install the Debian package prometheus, or pass --prometheus-bin)");
    }
  }
  std::string podman;
  if (o.containers) {
    podman = FindProgram(o.podman);
    if (podman.empty()) {
      return FailedPrecondition("podman not found (install the Debian packages podman and runc)");
    }
    if (FindProgram("runc").empty()) {
      return FailedPrecondition("runc not found (install the Debian package runc)");
    }
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
  if (Status s =
          WriteFile(SandboxYamlPath(),
                    std::string("failover: ") + FailoverModeName(o.failover) +
                        "\nfailover_threshold: " + std::to_string(o.failover_threshold) +
                        "\nagents: " + (o.start_agents ? "true" : "false") +
                        "\nbin_dir: " + bin_dir + "\norders_url: " + OrdersServiceUrl() +
                        "\nprometheus: " + (o.prometheus ? "true" : "false") +
                        "\ncontainers: " + (o.containers ? "true" : "false") +
                        "\ncontainer_replicas: " + std::to_string(o.container_replicas) +
                        (o.prometheus ? "\nprometheus_url: " + SandboxPrometheusUrl() : "") + "\n");
      !s.ok()) {
    return s;
  }

  spdlog::debug("sandbox: creating namespaces and bridge");
  if (Status s = CreateNetwork(); !s.ok()) return s;

  if (o.prometheus) {
    if (Status s = WritePrometheusConfig(o.start_agents); !s.ok()) return s;
  }
  auto start = [&](const DaemonSpec& spec) -> Status {
    spdlog::debug("sandbox: starting " + spec.name + " in " + spec.host + ": " +
                  ArgvToString(spec.argv));
    auto child = StartDaemon(ip, spec);
    if (!child.ok()) return child.status();
    started.push_back({spec, std::move(*child)});
    return WriteFile(PidsDir() + "/" + spec.name + ".pid",
                     std::to_string(started.back().child.id()) + "\n");
  };
  // Awaits readiness of started[from...] together under one deadline.
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  const SandboxHost& east = *FindSandboxHostByRole("db", kPrimaryRegion);
  auto await_ready = [&](size_t from) -> Status {
    auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
    for (size_t i = from; i < started.size(); ++i) {
      Started& s = started[i];
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
            !s.spec.ready_api_socket.empty() ? ApiSocketReady(s.spec.ready_api_socket, &why)
            : !s.spec.ready_url.empty()      ? HttpReady(s.spec.ready_url, &why)
            : s.spec.ready_file.empty()
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
    return Status::Ok();
  };

  // --containers: each host's Podman API first (agents learn their runtimes when they start),
  // then the containers.
  if (o.containers) {
    if (Status s = PrepareContainers(o, bin_dir); !s.ok()) return s;
    for (const auto& host : ContainerHosts()) {
      if (Status s = start(PodmanServiceSpec(podman, host)); !s.ok()) return s;
    }
    if (Status s = await_ready(0); !s.ok()) return s;
    if (Status s = StartContainers(o, podman); !s.ok()) return s;
  }
  const size_t first_daemon = started.size();
  for (const auto& spec : DaemonSpecs(o, bin_dir, dnsmasq, prometheus)) {
    if (Status s = start(spec); !s.ok()) return s;
  }
  if (Status s = await_ready(first_daemon); !s.ok()) return s;
  if (o.containers) {
    auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
    for (const auto& c : SandboxContainers(o.container_replicas)) {
      const std::string url = "http://" + c.address + ":" + std::to_string(c.port) + "/healthz";
      std::string why;
      while (!HttpReady(url, &why)) {
        if (std::chrono::steady_clock::now() >= deadline) {
          const std::string log = SandboxLogPath("container-" + c.name);
          return DeadlineExceeded("container " + c.name + " was not ready within " +
                                  std::to_string(o.ready_timeout.count()) + " ms (" + why + "); " +
                                  log + " ends with:\n" + LogTail(log));
        }
        std::this_thread::sleep_for(kPollInterval);
      }
      spdlog::debug("sandbox: container " + c.name + " ready");
    }
  }
  return WriteFile(SandboxInventoryPath(), InventoryYaml(o.start_agents));
}

}  // namespace

Status SandboxUp(const SandboxOptions& options) {
  if (geteuid() != 0) return FailedPrecondition("the sandbox needs root (network namespaces)");
  if (options.orders_retries < 0 || options.orders_retries > 100) {
    return FailedPrecondition("orders retries must be 0 to 100");
  }
  if (options.orders_fail_delay_ms < 0 || options.orders_fail_delay_ms > 600000) {
    return FailedPrecondition("orders fail delay must be 0 to 600000 ms");
  }
  if (options.failover_threshold < 1) {
    return FailedPrecondition("failover threshold must be at least 1");
  }
  if (options.container_replicas < 1 || options.container_replicas > kMaxContainerReplicas) {
    return FailedPrecondition("container replicas must be 1 to " +
                              std::to_string(kMaxContainerReplicas));
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

  // The containers (podman rm kills them at once), then whatever is left in their namespaces
  // (a crashed `up`, a Podman state that no longer knows them), then Podman's mounts.
  RemoveContainers(note);
  std::vector<int> container_pids;
  for (const auto& ns : ContainerNamespacesPresent()) {
    for (int pid : NamespacePids(ns)) container_pids.push_back(pid);
  }
  for (int pid : container_pids) kill(pid, SIGKILL);
  left = AwaitExit(container_pids, kKillGrace);
  if (!left.empty()) {
    note(Internal("container process " + std::to_string(left.front()) + " survived SIGKILL"));
  }
  UnmountContainerStorage(note);

  // fl-root first: deleting it here is synchronous, whereas a namespace's links go away in the
  // kernel's asynchronous namespace cleanup, which could race a following `sandbox up`.
  if (RootLinkExists()) note(RunChecked({"ip", "link", "del", Str(kRootLink)}));
  for (const auto& ns : ContainerNamespacesPresent()) note(RunChecked({"ip", "netns", "del", ns}));
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

}  // namespace faultline::sandbox
