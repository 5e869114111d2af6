#pragma once
// Inventory: which agents exist, where they listen and what labels they carry. Read from a YAML
// file (`--inventory`, or the sandbox's own):
//
//   agents:
//     - name: fl-app
//       address: 10.77.0.10:7070
//       labels: {host: fl-app, role: app}

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace faultline::engine {

struct AgentEndpoint {
  std::string name;
  std::string address;  // host:port
  std::map<std::string, std::string> labels;
};

struct Inventory {
  std::vector<AgentEndpoint> agents;
};

// INVALID_ARGUMENT naming file:line:column and the field for malformed input; NOT_FOUND when the
// file cannot be read. Agent names must be unique; every agent needs an address.
Result<Inventory> LoadInventory(const std::string& path);

// True when every selector label equals the agent's label.
bool MatchesSelector(const AgentEndpoint& agent,
                     const std::map<std::string, std::string>& selector);

}  // namespace faultline::engine
