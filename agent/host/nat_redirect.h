#pragma once
// NatRedirect: the nft nat chain that sends a fault's outbound traffic to a local listener, the
// part the DNS interceptor (udp/tcp port 53) and the dependency proxy (the dependency's ports)
// share. The chain hooks nat output; packets matching an exemption (the agent's own upstream
// sockets, by mark or conntrack label; excluded peers) return first, then each redirect rule
// sends what it matches to 127.0.0.1/[::1]:port. The listener reads the flow's pre-redirect
// destination with original_destination.h. Pure text; the batch goes through FaultTables.

#include <cstdint>
#include <string>
#include <vector>

namespace faultline::agent::host {

struct NatRedirect {
  std::string table;  // "inet faultline_<id>" (validated names)
  std::string chain = "output";
  int priority = -100;  // nat output; earlier (more negative) wins between faults
  // Matches whose packets are never redirected, in order ("meta mark 0x464c", "ct label 127").
  std::vector<std::string> exempt;
  struct Target {
    std::string match;  // nft match (and statements such as a named counter), "" = everything
    uint16_t port = 0;  // local listener
  };
  std::vector<Target> redirects;
};

// `add chain` + one `add rule ... return` per exemption + one `add rule ... redirect to :port`
// per target. The table must be created earlier in the same batch.
std::string NatRedirectBatch(const NatRedirect& redirect);

// "meta mark 0x464c": the match of packets from sockets carrying SO_MARK `mark`.
std::string SocketMarkMatch(uint32_t mark);

}  // namespace faultline::agent::host
