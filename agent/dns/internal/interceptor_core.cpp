#include "agent/dns/internal/interceptor_core.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace faultline::agent::dns::internal {

bool IsLoopback(const SocketAddress& a) {
  if (a.family() == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr) >> 24) == 127;
  }
  return a.family() == AF_INET6 &&
         IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr);
}

uint16_t PortOf(const SocketAddress& a) {
  return a.family() == AF_INET
             ? ntohs(reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_port)
             : ntohs(reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_port);
}

bool SameAddress(const SocketAddress& a, const SocketAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

Listener::~Listener() {
  for (auto& s : sockets) {
    if (s.udp >= 0) close(s.udp);
    if (s.tcp >= 0) close(s.tcp);
  }
}

Result<int> InterceptorCore::OpenUpstreamSocket(int type, const SocketAddress& upstream) const {
  int fd = socket(upstream.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(ErrnoText("socket"));
  if (options.socket_mark != 0) {
    uint32_t mark = options.socket_mark;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
      Status s(errno == EPERM ? StatusCode::kPermissionDenied : StatusCode::kUnavailable,
               ErrnoText("setsockopt(SO_MARK) (needs CAP_NET_ADMIN)"));
      close(fd);
      return s;
    }
  }
  if (connect(fd, upstream.get(), upstream.length) != 0 && errno != EINPROGRESS) {
    Status s = Unavailable(ErrnoText("connect to upstream"));
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace faultline::agent::dns::internal
