#pragma once
// The destination a redirected flow had before an nft `redirect` sent it to a local listener
// (nat_redirect.h): for TCP the accepted socket can ask the kernel (SO_ORIGINAL_DST, and
// IP6T_SO_ORIGINAL_DST for IPv6); for UDP only the conntrack entry knows (conntrack_lookup.h).
// The DNS interceptor and the dependency proxy both need it; this is the one implementation.

#include "agent/host/conntrack_lookup.h"
#include "common/status.h"

namespace faultline::agent::host {

// The pre-redirect destination of accepted TCP socket `fd` whose local address family is
// `family` (AF_INET or AF_INET6). NOT_FOUND when the connection was not redirected (no NAT).
// Thread-safe; one getsockopt.
Result<SocketAddress> TcpOriginalDestination(int fd, int family);

}  // namespace faultline::agent::host
