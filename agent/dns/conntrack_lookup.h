#pragma once
// Moved to agent/host/conntrack_lookup.h (the host layer). This forwarding header keeps
// dns_interceptor compiling until it includes the host header itself; remove it then.
#include "agent/host/conntrack_lookup.h"

namespace faultline::agent::dns {
using host::ConntrackLookup;
using host::SocketAddress;
}  // namespace faultline::agent::dns
