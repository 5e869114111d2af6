#include <unistd.h>

#include <filesystem>

#include "common/process.h"
#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox {

namespace fs = std::filesystem;

namespace internal {

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
      // No IPv6 link-local address on the machine's side (the sandbox is IPv4): it would appear
      // ~1.7 s after the link is up (DAD), and a browser on the machine (Chromium) takes a new
      // address for a network change and aborts its loads with ERR_NETWORK_CHANGED: the console's
      // page opened just after `sandbox up` then stayed at "Loading".
      {"ip", "link", "set", root, "addrgenmode", "none"},
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

}  // namespace internal

using namespace internal;

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

}  // namespace faultline::sandbox
