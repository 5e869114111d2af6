#include "controller/engine/inventory.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace faultline::engine {

namespace {

std::string Where(const std::string& path, const YAML::Node& n, const std::string& field) {
  return path + ":" + std::to_string(n.Mark().line + 1) + ":" +
         std::to_string(n.Mark().column + 1) + ": " + field + ": ";
}

}  // namespace

Result<Inventory> LoadInventory(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read inventory " + path);
  std::stringstream text;
  text << in.rdbuf();
  Inventory inv;
  try {
    YAML::Node root = YAML::Load(text.str());
    if (!root.IsMap() || !root["agents"] || !root["agents"].IsSequence()) {
      return InvalidArgument(Where(path, root, "agents") + "expected a list under 'agents'");
    }
    std::set<std::string> names;
    size_t i = 0;
    for (const auto& a : root["agents"]) {
      std::string field = "agents[" + std::to_string(i++) + "]";
      if (!a.IsMap()) return InvalidArgument(Where(path, a, field) + "expected a mapping");
      AgentEndpoint ep;
      for (const auto& kv : a) {
        auto key = kv.first.as<std::string>();
        if (key == "name") {
          ep.name = kv.second.as<std::string>();
        } else if (key == "address") {
          ep.address = kv.second.as<std::string>();
        } else if (key == "labels") {
          if (!kv.second.IsMap()) {
            return InvalidArgument(Where(path, kv.second, field + ".labels") +
                                   "expected a mapping");
          }
          for (const auto& l : kv.second) {
            ep.labels[l.first.as<std::string>()] = l.second.as<std::string>();
          }
        } else {
          return InvalidArgument(Where(path, kv.first, field + "." + key) + "unknown field");
        }
      }
      if (ep.name.empty()) return InvalidArgument(Where(path, a, field + ".name") + "required");
      if (ep.address.empty() || ep.address.rfind(':') == std::string::npos) {
        return InvalidArgument(Where(path, a, field + ".address") + "required, as host:port");
      }
      if (!names.insert(ep.name).second) {
        return InvalidArgument(Where(path, a, field + ".name") + "duplicate agent '" + ep.name +
                               "'");
      }
      inv.agents.push_back(std::move(ep));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return inv;
}

bool MatchesSelector(const AgentEndpoint& agent,
                     const std::map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = agent.labels.find(k);
    if (it == agent.labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace faultline::engine
