#include "agent/host/host_addresses.h"

#include <netdb.h>
#include <sys/socket.h>

#include <set>

namespace faultline::agent::host {

std::vector<std::string> ResolveHostAddresses(const std::vector<std::string>& hosts) {
  std::set<std::string> out;
  for (const std::string& h : hosts) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0) continue;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      char buf[NI_MAXHOST];
      if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) ==
          0) {
        out.insert(buf);
      }
    }
    freeaddrinfo(res);
  }
  return {out.begin(), out.end()};
}

}  // namespace faultline::agent::host
