#include "agent/host/original_destination.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace faultline::agent::host {
namespace {

// getsockopt(SO_ORIGINAL_DST) (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST share the value;
// their headers clash with netinet/in.h, so the number is spelled out.
constexpr int kSoOriginalDst = 80;

}  // namespace

Result<SocketAddress> TcpOriginalDestination(int fd, int family) {
  SocketAddress out;
  out.length = sizeof(out.storage);
  const int level = family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  if (::getsockopt(fd, level, kSoOriginalDst, &out.storage, &out.length) != 0) {
    return NotFound("no original destination (the connection was not redirected)");
  }
  return out;
}

}  // namespace faultline::agent::host
