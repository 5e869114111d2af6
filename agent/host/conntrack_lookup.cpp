#include "agent/host/conntrack_lookup.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace faultline::agent::host {
namespace {

// Requests per sendmsg. Each answer is a netlink skb of a few KiB (truesize); 32 of them stay
// well inside the default socket receive buffer, so none is dropped for lack of room.
constexpr size_t kChunk = 32;
constexpr size_t kRequestRoom = 256;  // one GET by reply tuple needs ~120 bytes
constexpr size_t kAnswerRoom = 8192;  // one conntrack entry message (NLMSG_DEFAULT_SIZE < 8 KiB)

const nlattr* FindAttr(const nlattr* first, int len, uint16_t type) {
  for (const nlattr* a = first; mnl_attr_ok(a, len); a = mnl_attr_next(a)) {
    if (mnl_attr_get_type(a) == type) return a;
    len -= static_cast<int>(MNL_ALIGN(a->nla_len));
  }
  return nullptr;
}

const nlattr* FindNested(const nlattr* nest, uint16_t type) {
  if (nest == nullptr) return nullptr;
  return FindAttr(static_cast<const nlattr*>(mnl_attr_get_payload(nest)),
                  static_cast<int>(mnl_attr_get_payload_len(nest)), type);
}

void PutRequest(std::vector<uint8_t>& buf, size_t offset, uint32_t seq,
                const ConntrackLookup::Flow& flow) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data() + offset);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = static_cast<uint8_t>(flow.client.family());
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  // The reply tuple: local (where the redirect sent it) -> client.
  nlattr* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  uint16_t local_port = 0, client_port = 0;
  if (flow.client.family() == AF_INET) {
    const auto* l = reinterpret_cast<const sockaddr_in*>(&flow.local.storage);
    const auto* c = reinterpret_cast<const sockaddr_in*>(&flow.client.storage);
    mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, l->sin_addr.s_addr);
    mnl_attr_put_u32(nlh, CTA_IP_V4_DST, c->sin_addr.s_addr);
    local_port = l->sin_port;
    client_port = c->sin_port;
  } else {
    const auto* l = reinterpret_cast<const sockaddr_in6*>(&flow.local.storage);
    const auto* c = reinterpret_cast<const sockaddr_in6*>(&flow.client.storage);
    mnl_attr_put(nlh, CTA_IP_V6_SRC, sizeof(in6_addr), &l->sin6_addr);
    mnl_attr_put(nlh, CTA_IP_V6_DST, sizeof(in6_addr), &c->sin6_addr);
    local_port = l->sin6_port;
    client_port = c->sin6_port;
  }
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, local_port);  // network byte order already
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, client_port);
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
}

// The original tuple's destination in a conntrack entry message; length 0 when it has none.
SocketAddress OriginalDestination(const nlmsghdr* nlh) {
  SocketAddress out;
  const size_t offset = MNL_ALIGN(sizeof(nfgenmsg));
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + offset) return out;
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  const auto* first = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
  const int len = static_cast<int>(nlh->nlmsg_len - MNL_NLMSG_HDRLEN - offset);
  const nlattr* orig = FindAttr(first, len, CTA_TUPLE_ORIG);
  const nlattr* ip = FindNested(orig, CTA_TUPLE_IP);
  const nlattr* dport = FindNested(FindNested(orig, CTA_TUPLE_PROTO), CTA_PROTO_DST_PORT);
  if (dport == nullptr || mnl_attr_get_payload_len(dport) != sizeof(uint16_t)) return out;
  if (nfg->nfgen_family == AF_INET) {
    const nlattr* dst = FindNested(ip, CTA_IP_V4_DST);
    if (dst == nullptr || mnl_attr_get_payload_len(dst) != sizeof(uint32_t)) return out;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = mnl_attr_get_u32(dst);
    v4->sin_port = mnl_attr_get_u16(dport);
    out.length = sizeof(sockaddr_in);
  } else if (nfg->nfgen_family == AF_INET6) {
    const nlattr* dst = FindNested(ip, CTA_IP_V6_DST);
    if (dst == nullptr || mnl_attr_get_payload_len(dst) != sizeof(in6_addr)) return out;
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    v6->sin6_family = AF_INET6;
    std::memcpy(&v6->sin6_addr, mnl_attr_get_payload(dst), sizeof(in6_addr));
    v6->sin6_port = mnl_attr_get_u16(dport);
    out.length = sizeof(sockaddr_in6);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<ConntrackLookup>> ConntrackLookup::Open() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (fd < 0) return Unavailable(std::string("netlink socket: ") + std::strerror(errno));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    Status s = Unavailable(std::string("netlink bind: ") + std::strerror(errno));
    close(fd);
    return s;
  }
  std::unique_ptr<ConntrackLookup> lookup(new ConntrackLookup(fd));
  // Probe: a flow nobody has. ENOENT means the query itself is allowed and understood.
  Flow probe;
  auto* c = reinterpret_cast<sockaddr_in*>(&probe.client.storage);
  c->sin_family = AF_INET;
  c->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->sin_port = htons(9);
  probe.client.length = sizeof(sockaddr_in);
  probe.local = probe.client;
  SocketAddress out;
  Status s = lookup->OriginalDestinations({&probe, 1}, {&out, 1});
  if (!s.ok()) return s;
  return lookup;
}

ConntrackLookup::~ConntrackLookup() {
  if (fd_ >= 0) close(fd_);
}

Status ConntrackLookup::OriginalDestinations(std::span<const Flow> flows,
                                             std::span<SocketAddress> out) {
  for (auto& o : out) o = SocketAddress();
  for (size_t start = 0; start < flows.size(); start += kChunk) {
    const size_t n = std::min(kChunk, flows.size() - start);
    send_buf_.assign(n * kRequestRoom, 0);
    const uint32_t first_seq = seq_;
    seq_ += static_cast<uint32_t>(n);
    size_t used = 0;
    for (size_t i = 0; i < n; ++i) {
      PutRequest(send_buf_, used, first_seq + static_cast<uint32_t>(i), flows[start + i]);
      used += reinterpret_cast<const nlmsghdr*>(send_buf_.data() + used)->nlmsg_len;
    }
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t sent;
    do {
      sent = sendto(fd_, send_buf_.data(), used, 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof(kernel));
    } while (sent < 0 && errno == EINTR);
    if (sent != static_cast<ssize_t>(used)) {
      return Unavailable(std::string("conntrack query: ") + std::strerror(errno));
    }
    // The kernel answers while handling sendto, so every answer is queued by now: one per
    // request, an entry or an error (ENOENT: no such flow).
    recv_buf_.resize(kChunk * kAnswerRoom);
    mmsghdr msgs[kChunk];
    iovec iovs[kChunk];
    size_t answered = 0;
    while (answered < n) {
      for (size_t k = 0; k < n - answered; ++k) {
        iovs[k] = {recv_buf_.data() + k * kAnswerRoom, kAnswerRoom};
        msgs[k] = {};
        msgs[k].msg_hdr.msg_iov = &iovs[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(fd_, msgs, static_cast<unsigned>(n - answered), MSG_DONTWAIT, nullptr);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
          return Unavailable(std::string("conntrack answer: ") + std::strerror(errno));
        }
        break;  // fewer answers than requests: the rest count as not found
      }
      for (int k = 0; k < got; ++k) {
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(iovs[k].iov_base);
        const int len = static_cast<int>(msgs[k].msg_len);
        if (!mnl_nlmsg_ok(nlh, len)) continue;
        const uint32_t idx = nlh->nlmsg_seq - first_seq;
        if (idx >= n) continue;  // a late answer to an earlier batch
        ++answered;
        if (nlh->nlmsg_type == NLMSG_ERROR) {
          const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          if (nlh->nlmsg_len >= MNL_NLMSG_HDRLEN + sizeof(nlmsgerr) && err->error != 0 &&
              err->error != -ENOENT) {
            return Unavailable(std::string("conntrack query refused: ") +
                               std::strerror(-err->error));
          }
          continue;
        }
        out[start + idx] = OriginalDestination(nlh);
      }
    }
  }
  return Status::Ok();
}

}  // namespace faultline::agent::host
