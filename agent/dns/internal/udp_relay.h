#pragma once
// Internal to the DNS interceptor: DNS over UDP, on the interceptor's event loop. Queries are
// read in batches (recvmmsg), decided by the rule table, answered (at once or from a timer
// queue) or forwarded unchanged from a small pool of marked sockets per resolver (matched by
// socket and id), the reply relayed byte-for-byte unless a CNAME in it matches a rule. The
// resolver is the query's original destination (conntrack, cached briefly), else the configured
// upstream. Event-loop thread only, except Open/Close (before the loop starts, after it ends).

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "agent/dns/internal/interceptor_core.h"

namespace faultline::agent::dns::internal {

class DnsUdpRelay {
 public:
  explicit DnsUdpRelay(InterceptorCore& core);
  ~DnsUdpRelay();
  DnsUdpRelay(const DnsUdpRelay&) = delete;
  DnsUdpRelay& operator=(const DnsUdpRelay&) = delete;

  // Opens the first socket to the configured upstream (so a bad mark or address fails Start
  // clearly) and the conntrack lookup when forwarding to original destinations.
  Status Open();
  // Forgets every pending and delayed query and closes the upstream sockets. Idempotent.
  void Close();

  // A listener's UDP socket is readable.
  void OnListenerReadable(const std::shared_ptr<Listener>& listener, const ListenSocket& socket);
  // The pooled upstream sockets, to watch (index i ↔ OnUpstreamReadable(i)); grows as needed.
  size_t upstream_count() const { return upstream_sockets_.size(); }
  int upstream_fd(size_t i) const { return upstream_sockets_[i].fd; }
  void OnUpstreamReadable(size_t i);
  // Times out forwarded queries and sends the delayed answers that are due at `now`.
  void RunDue(SteadyClock::time_point now);
  // The next instant RunDue has something to do; time_point::max() for none.
  SteadyClock::time_point NextDeadline() const;

 private:
  struct PendingUdp;
  struct DelayedUdp;
  struct UpstreamSocket {
    int fd = -1;
    SocketAddress dest;  // the resolver
    std::vector<bool> ids_in_use = std::vector<bool>(65536, false);
  };
  struct FlowKey {
    uint8_t family = 0;
    uint16_t local_port = 0;
    uint16_t client_port = 0;
    uint8_t address[16] = {};
    bool operator==(const FlowKey&) const = default;
  };
  struct FlowKeyHash {
    size_t operator()(const FlowKey& k) const;
  };
  struct OrigDst {
    SocketAddress dest;
    SteadyClock::time_point expires;
  };
  struct OutDatagram {
    int fd = -1;
    SocketAddress to;   // length 0: a connected socket
    size_t offset = 0;  // the bytes, in out_bytes_
    size_t length = 0;
  };

  void ResolveUdpDestinations(const SocketAddress* clients, const SocketAddress& local,
                              uint16_t port, std::span<const int> which, SocketAddress* dests);
  void ForwardUdp(std::span<const uint8_t> message, const SocketAddress& client,
                  const SocketAddress& dest, const std::shared_ptr<Listener>& listener, int udp_fd,
                  Decision decision);
  void HandleUpstreamReply(PendingUdp& p, std::span<const uint8_t> reply);
  void SendUdpAnswer(int udp_fd, const SocketAddress& client, DnsWire answer, int delay_ms,
                     std::shared_ptr<DnsRuleCounters> counters, std::shared_ptr<Listener> listener);
  uint8_t* Slot(int i);
  void Queue(int fd, const SocketAddress* to, std::span<const uint8_t> bytes);
  void FlushOutbox();

  InterceptorCore& core_;
  // Forwarded queries by (socket, id), their deadlines in order, the pooled upstream sockets.
  std::unordered_map<uint64_t, std::unique_ptr<PendingUdp>> pending_;
  std::vector<std::unique_ptr<PendingUdp>> spare_pending_;
  std::deque<std::pair<SteadyClock::time_point, uint64_t>> expiry_;
  std::vector<UpstreamSocket> upstream_sockets_;
  // UDP original destinations: null when conntrack cannot be queried here.
  std::unique_ptr<ConntrackLookup> conntrack_;
  std::unordered_map<FlowKey, OrigDst, FlowKeyHash> orig_dst_cache_;
  // Batched I/O: receive slots for recvmmsg, datagrams for sendmmsg.
  std::vector<uint8_t> arena_;
  std::vector<OutDatagram> outbox_;
  std::vector<uint8_t> out_bytes_;
  std::vector<std::unique_ptr<DelayedUdp>> delayed_;  // a heap: earliest due first
};

}  // namespace faultline::agent::dns::internal
