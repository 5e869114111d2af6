#pragma once
// ConntrackLookup: the destination a UDP flow had before an nft `redirect` sent it to a local
// socket, read from the flow's conntrack entry. A redirect rewrites the destination address and
// port, and unlike TCP (SO_ORIGINAL_DST) a UDP socket has no way to ask for the old ones; the
// kernel keeps them in the conntrack entry's original tuple. The socket that received the
// datagram knows the entry's reply tuple (local address:port -> client address:port), so one
// ctnetlink GET by reply tuple finds it. libnetfilter_conntrack cannot send that query (it always
// puts an original tuple in the request, which the kernel then prefers), so the request is built
// with libmnl.
//
// Lookups are batched: every request of a batch goes out in one sendmsg and the answers come back
// through one recvmmsg, so a burst of queries costs two syscalls. Needs CAP_NET_ADMIN in the
// network namespace; looks up that namespace's conntrack table (zone 0).

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"

namespace faultline::agent::host {

// A numeric socket address.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

class ConntrackLookup {
 public:
  // Opens a NETLINK_NETFILTER socket. UNAVAILABLE when the kernel has no ctnetlink or the
  // caller lacks CAP_NET_ADMIN (the socket opens, but the first query would fail: Open sends a
  // probe query and reports that instead).
  static Result<std::unique_ptr<ConntrackLookup>> Open();
  ~ConntrackLookup();
  ConntrackLookup(const ConntrackLookup&) = delete;
  ConntrackLookup& operator=(const ConntrackLookup&) = delete;

  // One UDP flow as its receiving socket sees it.
  struct Flow {
    SocketAddress client;  // the datagram's source
    SocketAddress local;   // the address:port it arrived on (after the redirect)
  };

  // For each flow, its original destination (address and port before NAT), or length 0 when
  // conntrack has no entry for it (the flow was never tracked, or expired). out.size() must equal
  // flows.size(); client and local of one flow share a family (AF_INET or AF_INET6).
  // UNAVAILABLE on a netlink error (then every out[i] has length 0). Not thread-safe.
  Status OriginalDestinations(std::span<const Flow> flows, std::span<SocketAddress> out);

 private:
  explicit ConntrackLookup(int fd) : fd_(fd) {}
  int fd_ = -1;
  uint32_t seq_ = 1;
  std::vector<uint8_t> send_buf_;
  std::vector<uint8_t> recv_buf_;
};

}  // namespace faultline::agent::host
