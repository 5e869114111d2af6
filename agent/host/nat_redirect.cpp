#include "agent/host/nat_redirect.h"

#include <sstream>

namespace faultline::agent::host {

std::string NatRedirectBatch(const NatRedirect& r) {
  const std::string ch = r.table + " " + r.chain;
  std::string b = "add chain " + ch + " { type nat hook output priority " +
                  std::to_string(r.priority) + "; }\n";
  for (const std::string& match : r.exempt) b += "add rule " + ch + " " + match + " return\n";
  for (const auto& t : r.redirects) {
    std::string match = t.match;
    if (!match.empty() && match.back() != ' ') match += ' ';
    b += "add rule " + ch + " " + match + "redirect to :" + std::to_string(t.port) + "\n";
  }
  return b;
}

std::string SocketMarkMatch(uint32_t mark) {
  std::ostringstream s;
  s << "meta mark 0x" << std::hex << mark;
  return s.str();
}

}  // namespace faultline::agent::host
