#pragma once
// Internal to the DNS interceptor (not part of its interface): what its parts share — options,
// the configured upstream, the counters, the rule table, the listeners — and small socket
// helpers. The parts: DnsRuleTable (rule_table.h) decides; DnsUdpRelay (udp_relay.h) serves UDP
// on the event loop; DnsTcpServer (tcp_server.h) serves TCP on the same loop (host::EventLoop).

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/dns/dns_interceptor.h"
#include "agent/dns/internal/rule_table.h"
#include "agent/host/conntrack_lookup.h"
#include "agent/host/event_loop.h"
#include "common/status.h"

namespace faultline::agent::dns::internal {

using host::ConntrackLookup;
using SteadyClock = std::chrono::steady_clock;

// The interceptor's counters (see DnsInterceptorStats); any thread.
struct InterceptorCounters {
  std::atomic<uint64_t> seen{0}, faulted{0}, passed{0}, malformed{0}, overload{0}, timeouts{0},
      upstream_errors{0}, tcp_rejected{0}, tcp_accept_failures{0}, delayed_pending{0}, orig_dst{0};
  std::atomic<int64_t> outstanding{0};
};

// A listening address family: its UDP and TCP sockets.
struct ListenSocket {
  int family = AF_INET;
  int udp = -1;
  int tcp = -1;
  SocketAddress local;  // the bound address (port included)
};

// One listening port on every listen address; the main one has scope "". Closes its sockets
// with the last reference (the event loop and pending UDP queries hold their own).
struct Listener {
  std::string scope;
  uint16_t port = 0;
  std::vector<ListenSocket> sockets;
  ~Listener();
};

// Shared by the interceptor's parts; lives as long as the interceptor.
struct InterceptorCore {
  explicit InterceptorCore(DnsInterceptorOptions o) : options(std::move(o)), rules(counters) {}
  const DnsInterceptorOptions options;
  SocketAddress upstream;  // set by Start
  InterceptorCounters counters;
  DnsRuleTable rules;
  std::unique_ptr<host::EventLoop> loop;  // set by Start; the one thread everything runs on

  // A non-blocking socket of `type` connected (or connecting) to `to`, carrying
  // options.socket_mark. PERMISSION_DENIED when the mark cannot be set; UNAVAILABLE otherwise.
  Result<int> OpenUpstreamSocket(int type, const SocketAddress& to) const;
};

bool IsLoopback(const SocketAddress& a);
uint16_t PortOf(const SocketAddress& a);
bool SameAddress(const SocketAddress& a, const SocketAddress& b);
std::string ErrnoText(const char* what);

// Event-loop tags: the kind of fd in the top byte, an index or id below.
enum class TagKind : uint64_t {
  kUdpListener = 1,
  kTcpListener,
  kUdpUpstream,
  kTcpClient,
  kTcpUpstream
};
inline uint64_t MakeTag(TagKind kind, uint64_t index) {
  return (static_cast<uint64_t>(kind) << 56) | (index & ((uint64_t{1} << 56) - 1));
}
inline TagKind KindOf(uint64_t tag) { return static_cast<TagKind>(tag >> 56); }
inline uint64_t TagIndex(uint64_t tag) { return tag & ((uint64_t{1} << 56) - 1); }
inline uint64_t TcpClientTag(uint64_t id) { return MakeTag(TagKind::kTcpClient, id); }
inline uint64_t TcpUpstreamTag(uint64_t id) { return MakeTag(TagKind::kTcpUpstream, id); }
inline bool IsTcpUpstreamTag(uint64_t tag) { return KindOf(tag) == TagKind::kTcpUpstream; }

}  // namespace faultline::agent::dns::internal
