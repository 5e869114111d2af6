#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "controller/sandbox/sandbox_internal.h"

namespace faultline::sandbox {

namespace fs = std::filesystem;
using namespace internal;

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
  int replicas = 1;
  try {
    if (fs::exists(SandboxYamlPath())) {
      YAML::Node y = YAML::LoadFile(SandboxYamlPath());
      std::string mode = y["failover"].as<std::string>("");
      if (mode == "auto") st.failover = FailoverMode::kAuto;
      if (mode == "off") st.failover = FailoverMode::kOff;
      st.failover_threshold = y["failover_threshold"].as<int>(0);
      st.agents = y["agents"].as<bool>(false);
      st.prometheus = y["prometheus"].as<bool>(false);
      st.containers = y["containers"].as<bool>(false);
      replicas = y["container_replicas"].as<int>(1);
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

  for (const auto& name : ExpectedProcessNames(st.agents, st.prometheus, st.containers)) {
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
  if (st.containers) {
    st.containers_status = ContainerStatuses(replicas);
    for (const auto& c : st.containers_status) {
      any = any || c.running;
      if (!c.running) {
        all = false;
        st.problems.push_back("container " + c.container.name + " on " + c.container.host +
                              " is not running");
      }
    }
  } else if (!ContainerNamespacesPresent().empty()) {
    any = true;
    all = false;
    st.problems.push_back("container namespaces (fl-c-*) left behind");
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
  json containers = json::array();
  for (const auto& c : st.containers_status) {
    json labels = json::object();
    for (const auto& [k, v] : c.container.labels) labels[k] = v;
    containers.push_back(
        {{"name", c.container.name},
         {"service", c.container.service},
         {"host", c.container.host},
         {"netns", c.container.netns},
         {"address", c.container.address},
         {"region", c.container.region.empty() ? json(nullptr) : json(c.container.region)},
         {"labels", labels},
         {"id", c.id.empty() ? json(nullptr) : json(c.id)},
         {"pid", c.pid > 0 ? json(c.pid) : json(nullptr)},
         {"running", c.running},
         {"api_socket", ContainerApiSocket(c.container.host)},
         {"log", c.log_path}});
  }
  json out = {{"state", state},
              {"bridge_present", st.bridge_present},
              {"root_link_present", st.root_link_present},
              {"root_address", Str(kRootAddress)},
              {"failover", st.failover ? json(FailoverModeName(*st.failover)) : json(nullptr)},
              {"failover_threshold", st.failover_threshold},
              {"agents", st.agents},
              {"prometheus", st.prometheus},
              {"inventory", SandboxInventoryPath()},
              {"hosts", hosts},
              {"processes", processes},
              {"containers", containers},
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
