#include "agent/dns/internal/udp_relay.h"

#include <ldns/wire2host.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace faultline::agent::dns::internal {
namespace {

constexpr size_t kMaxDnsMessage = kMaxDnsMessageSize;
// Datagrams read per wake-up, so a flood on the listener cannot starve upstream replies.
constexpr int kUdpBatch = 64;
// How long a UDP client address:port keeps its looked-up original destination. While conntrack
// has an entry for the flow, a datagram from that address:port to the redirect target can only
// belong to it (a second flow would clash on the reply tuple), and every datagram renews the
// entry for nf_conntrack_udp_timeout (30 s by default), so a second is far inside its life.
constexpr auto kOrigDstCacheTtl = std::chrono::seconds(1);
constexpr size_t kOrigDstCacheMax = 8192;
// Orders the delayed answers' heap: the earliest due on top.
constexpr auto kDueLater = [](const auto& a, const auto& b) { return a->due > b->due; };

uint64_t PendingKey(size_t socket, uint16_t id) { return (uint64_t{socket} << 16) | id; }
// Upstream sockets per resolver (queries sharing an id at the same time need one each) and in all.
constexpr size_t kSocketsPerResolver = 16;
constexpr size_t kMaxUpstreamSockets = 256;
// Finished PendingUdp objects kept for reuse, so a forwarded query allocates no new one.
constexpr size_t kPendingPool = 1024;
}  // namespace

// One forwarded UDP query waiting for the upstream's reply on a pooled upstream socket. The
// query goes out unchanged (same transaction id), so two outstanding queries with the same id to
// the same resolver use different sockets; a reply is matched by socket and id.
struct DnsUdpRelay::PendingUdp {
  uint64_t key = 0;  // PendingKey(socket index, id)
  SocketAddress client;
  std::shared_ptr<Listener> listener;  // keeps the reply socket open
  int udp_fd = -1;                     // the listener socket the query came in on
  SteadyClock::time_point deadline;
  DnsWire query;      // kept for a CNAME-triggered fault answer
  Decision decision;  // counters set: a DELAY rule's answer
};

// A UDP answer waiting for its send time.
struct DnsUdpRelay::DelayedUdp {
  SteadyClock::time_point due;
  DnsWire answer;
  SocketAddress client;
  std::shared_ptr<Listener> listener;
  int udp_fd = -1;
  std::shared_ptr<DnsRuleCounters> counters;
};

DnsUdpRelay::DnsUdpRelay(InterceptorCore& core) : core_(core) {}

DnsUdpRelay::~DnsUdpRelay() { Close(); }

Status DnsUdpRelay::Open() {
  // Fail now, with a clear reason, rather than on the first forwarded query.
  auto probe = core_.OpenUpstreamSocket(SOCK_DGRAM, core_.upstream);
  if (!probe.ok()) return probe.status();
  // Kept as the first pooled socket to the configured upstream.
  upstream_sockets_.push_back(UpstreamSocket{*probe, core_.upstream});
  if (core_.options.forward_to_original_destination) {
    auto ct = ConntrackLookup::Open();
    if (ct.ok()) {
      conntrack_ = std::move(*ct);
    } else {
      // Without CAP_NET_ADMIN no redirect can exist either: queries arrive here only directly.
      // (No format arguments in this file: ldns's headers break fmt's templates.)
      spdlog::info("dns interceptor: UDP goes to the configured upstream (" +
                   ct.status().message() + ")");
    }
  }
  return Status::Ok();
}

void DnsUdpRelay::Close() {
  core_.counters.outstanding -= static_cast<int64_t>(pending_.size());
  pending_.clear();
  expiry_.clear();
  for (auto& u : upstream_sockets_) close(u.fd);
  upstream_sockets_.clear();
  conntrack_.reset();
  orig_dst_cache_.clear();
  core_.counters.delayed_pending -= static_cast<int64_t>(delayed_.size());
  delayed_.clear();
}

SteadyClock::time_point DnsUdpRelay::NextDeadline() const {
  auto t = SteadyClock::time_point::max();
  if (!expiry_.empty()) t = expiry_.front().first;
  if (!delayed_.empty()) t = std::min(t, delayed_.front()->due);
  return t;
}

void DnsUdpRelay::OnUpstreamReadable(size_t i) {
  mmsghdr msgs[kUdpBatch];
  iovec iovs[kUdpBatch];
  for (int k = 0; k < kUdpBatch; ++k) {
    iovs[k] = {Slot(k), kMaxDnsMessage};
    msgs[k] = {};
    msgs[k].msg_hdr.msg_iov = &iovs[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
  }
  int got = recvmmsg(upstream_sockets_[i].fd, msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
  if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    ++core_.counters
          .upstream_errors;  // e.g. ICMP port unreachable: the client will time out and retry
  }
  for (int k = 0; k < got; ++k) {
    const uint8_t* reply = Slot(k);
    if (msgs[k].msg_len < 2) continue;
    const uint16_t id = LDNS_ID_WIRE(reply);
    auto it = pending_.find(PendingKey(i, id));
    if (it == pending_.end()) continue;  // late (timed out) or stray
    std::unique_ptr<PendingUdp> owned = std::move(it->second);
    pending_.erase(it);

    upstream_sockets_[i].ids_in_use[id] = false;
    --core_.counters.outstanding;
    HandleUpstreamReply(*owned, std::span<const uint8_t>(reply, msgs[k].msg_len));
    // Back to the pool (its query buffer keeps its capacity).
    owned->listener.reset();
    owned->decision = Decision();
    if (spare_pending_.size() < kPendingPool) spare_pending_.push_back(std::move(owned));
  }
  FlushOutbox();
}

void DnsUdpRelay::RunDue(SteadyClock::time_point now) {
  // Every query has the same timeout, so expiry_ is in deadline order.
  while (!expiry_.empty() && expiry_.front().first <= now) {
    auto it = pending_.find(expiry_.front().second);
    if (it != pending_.end() && it->second->deadline <= now) {
      upstream_sockets_[it->first >> 16].ids_in_use[it->first & 0xffff] = false;
      pending_.erase(it);
      --core_.counters.outstanding;
      ++core_.counters.timeouts;
    }
    expiry_.pop_front();
  }

  while (!delayed_.empty() && delayed_.front()->due <= now) {
    std::pop_heap(delayed_.begin(), delayed_.end(), kDueLater);
    std::unique_ptr<DelayedUdp> d = std::move(delayed_.back());
    delayed_.pop_back();
    --core_.counters.delayed_pending;
    sendto(d->udp_fd, d->answer.data(), d->answer.size(), MSG_DONTWAIT, d->client.get(),
           d->client.length);
    if (d->counters) {
      ++core_.counters.faulted;
      DnsRuleTable::CountFaulted(d->counters);
    }
  }
}

void DnsUdpRelay::SendUdpAnswer(int udp_fd, const SocketAddress& client, DnsWire answer,
                                int delay_ms, std::shared_ptr<DnsRuleCounters> counters,
                                std::shared_ptr<Listener> listener) {
  if (delay_ms <= 0) {
    sendto(udp_fd, answer.data(), answer.size(), MSG_DONTWAIT, client.get(), client.length);
    if (counters) {
      ++core_.counters.faulted;
      DnsRuleTable::CountFaulted(counters);
    }
    return;
  }
  if (delayed_.size() >= static_cast<size_t>(std::max(1, core_.options.max_outstanding))) {
    ++core_.counters.overload;
    return;
  }
  auto d = std::make_unique<DelayedUdp>();
  d->due = SteadyClock::now() + std::chrono::milliseconds(delay_ms);
  d->answer = std::move(answer);
  d->client = client;
  d->listener = std::move(listener);
  d->udp_fd = udp_fd;
  d->counters = std::move(counters);
  delayed_.push_back(std::move(d));
  std::push_heap(delayed_.begin(), delayed_.end(), kDueLater);
  ++core_.counters.delayed_pending;
}

void DnsUdpRelay::OnListenerReadable(const std::shared_ptr<Listener>& listener,
                                     const ListenSocket& socket) {
  const int udp_fd = socket.udp;
  const SocketAddress& local = socket.local;
  // One recvmmsg for up to kUdpBatch queries; their forwards and answers go out in FlushOutbox.
  mmsghdr msgs[kUdpBatch];
  iovec iovs[kUdpBatch];
  SocketAddress clients[kUdpBatch];
  for (int i = 0; i < kUdpBatch; ++i) {
    iovs[i] = {Slot(i), kMaxDnsMessage};
    msgs[i] = {};
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &clients[i].storage;
    msgs[i].msg_hdr.msg_namelen = sizeof(clients[i].storage);
  }
  int got = recvmmsg(udp_fd, msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
  if (got <= 0) return;
  Decision decisions[kUdpBatch];
  int forwards[kUdpBatch];
  int forward_count = 0;
  for (int i = 0; i < got; ++i) {
    clients[i].length = msgs[i].msg_hdr.msg_namelen;
    decisions[i] = core_.rules.Decide(std::span<const uint8_t>(Slot(i), msgs[i].msg_len),
                                      listener->scope, DnsTransport::kUdp);
    if (decisions[i].kind == Decision::Kind::kForward) forwards[forward_count++] = i;
  }
  // Only forwarded queries need to know where they were going: one conntrack round trip for all
  // of the batch's cache misses.
  SocketAddress dests[kUdpBatch];
  ResolveUdpDestinations(clients, local, listener->port, {forwards, size_t(forward_count)}, dests);
  for (int i = 0; i < got; ++i) {
    Decision& d = decisions[i];
    switch (d.kind) {
      case Decision::Kind::kMalformed:
        break;
      case Decision::Kind::kDrop:
        ++core_.counters.faulted;
        DnsRuleTable::CountFaulted(d.counters);
        break;
      case Decision::Kind::kRespond:
        SendUdpAnswer(udp_fd, clients[i], std::move(d.response), d.delay_ms, d.counters, listener);
        break;
      case Decision::Kind::kForward:
        ForwardUdp(std::span<const uint8_t>(Slot(i), msgs[i].msg_len), clients[i], dests[i],
                   listener, udp_fd, std::move(d));
        break;
    }
  }
  FlushOutbox();
}

size_t DnsUdpRelay::FlowKeyHash::operator()(const FlowKey& k) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the key's bytes
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(&k.family, 1);
  mix(reinterpret_cast<const uint8_t*>(&k.local_port), 2);
  mix(reinterpret_cast<const uint8_t*>(&k.client_port), 2);
  mix(k.address, k.family == AF_INET ? 4 : 16);
  return static_cast<size_t>(h);
}

void DnsUdpRelay::ResolveUdpDestinations(const SocketAddress* clients, const SocketAddress& local,
                                         uint16_t port, std::span<const int> which,
                                         SocketAddress* dests) {
  for (int i : which) dests[i] = core_.upstream;
  if (conntrack_ == nullptr || which.empty()) return;
  const auto now = SteadyClock::now();
  FlowKey keys[kUdpBatch];
  ConntrackLookup::Flow flows[kUdpBatch];
  int flow_of[kUdpBatch];
  size_t misses = 0;
  for (int i : which) {
    const SocketAddress& c = clients[i];
    if (c.family() != local.family()) continue;
    FlowKey& k = keys[i];
    k.family = static_cast<uint8_t>(c.family());
    k.local_port = port;
    k.client_port = PortOf(c);
    if (c.family() == AF_INET) {
      std::memcpy(k.address, &reinterpret_cast<const sockaddr_in*>(&c.storage)->sin_addr, 4);
    } else {
      std::memcpy(k.address, &reinterpret_cast<const sockaddr_in6*>(&c.storage)->sin6_addr, 16);
    }
    auto it = orig_dst_cache_.find(k);
    if (it != orig_dst_cache_.end() && it->second.expires > now) {
      dests[i] = it->second.dest;
      continue;
    }
    flows[misses] = {c, local};
    flow_of[misses++] = i;
  }
  if (misses == 0) return;
  SocketAddress found[kUdpBatch];
  Status s = conntrack_->OriginalDestinations({flows, misses}, {found, misses});
  if (!s.ok()) {
    spdlog::warn("dns interceptor: " + s.message());
    return;  // this batch goes to the configured upstream; the next one asks again
  }
  if (orig_dst_cache_.size() + misses > kOrigDstCacheMax) {
    std::erase_if(orig_dst_cache_, [&](const auto& e) { return e.second.expires <= now; });
    if (orig_dst_cache_.size() + misses > kOrigDstCacheMax) orig_dst_cache_.clear();
  }
  for (size_t m = 0; m < misses; ++m) {
    const int i = flow_of[m];
    // No entry, or one that was not redirected (the client asked this listener itself).
    if (found[m].length != 0 && !(IsLoopback(found[m]) && PortOf(found[m]) == port)) {
      dests[i] = found[m];
    }
    orig_dst_cache_[keys[i]] = OrigDst{dests[i], now + kOrigDstCacheTtl};
  }
}

uint8_t* DnsUdpRelay::Slot(int i) {
  if (arena_.empty()) arena_.resize(static_cast<size_t>(kUdpBatch) * kMaxDnsMessage);
  return arena_.data() + static_cast<size_t>(i) * kMaxDnsMessage;
}

void DnsUdpRelay::Queue(int fd, const SocketAddress* to, std::span<const uint8_t> bytes) {
  OutDatagram d;
  d.fd = fd;
  if (to != nullptr) d.to = *to;
  d.offset = out_bytes_.size();
  d.length = bytes.size();
  out_bytes_.insert(out_bytes_.end(), bytes.begin(), bytes.end());
  outbox_.push_back(d);
}

void DnsUdpRelay::FlushOutbox() {
  // Consecutive datagrams for the same socket go out in one sendmmsg. A datagram the kernel
  // refuses is dropped, as a lost UDP packet would be: the client retries, a forwarded query
  // times out.
  static thread_local std::vector<mmsghdr> msgs;  // event loop only; reused, never shrunk
  static thread_local std::vector<iovec> iovs;
  size_t start = 0;
  while (start < outbox_.size()) {
    size_t end = start;
    while (end < outbox_.size() && outbox_[end].fd == outbox_[start].fd) ++end;
    msgs.assign(end - start, mmsghdr{});
    iovs.resize(end - start);
    for (size_t i = start; i < end; ++i) {
      OutDatagram& d = outbox_[i];
      iovs[i - start] = {out_bytes_.data() + d.offset, d.length};
      msgs[i - start].msg_hdr.msg_iov = &iovs[i - start];
      msgs[i - start].msg_hdr.msg_iovlen = 1;
      if (d.to.length != 0) {
        msgs[i - start].msg_hdr.msg_name = &d.to.storage;
        msgs[i - start].msg_hdr.msg_namelen = d.to.length;
      }
    }
    size_t sent = 0;
    while (sent < msgs.size()) {
      int n = sendmmsg(outbox_[start].fd, msgs.data() + sent, msgs.size() - sent, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ++sent;  // skip the one the kernel refused
        continue;
      }
      sent += static_cast<size_t>(n);
    }
    start = end;
  }
  outbox_.clear();
  out_bytes_.clear();  // keeps its capacity: no allocation per datagram once warm
}

void DnsUdpRelay::ForwardUdp(std::span<const uint8_t> message, const SocketAddress& client,
                             const SocketAddress& dest, const std::shared_ptr<Listener>& listener,
                             int udp_fd, Decision decision) {
  if (pending_.size() >= static_cast<size_t>(std::max(1, core_.options.max_outstanding))) {
    ++core_.counters.overload;
    return;
  }
  if (!SameAddress(dest, core_.upstream)) ++core_.counters.orig_dst;
  const uint16_t id = LDNS_ID_WIRE(message.data());  // Decide parsed it: >= 12 bytes
  size_t chosen = upstream_sockets_.size();
  size_t for_dest = 0;
  for (size_t i = 0; i < upstream_sockets_.size(); ++i) {
    if (!SameAddress(upstream_sockets_[i].dest, dest)) continue;
    ++for_dest;
    if (!upstream_sockets_[i].ids_in_use[id]) {
      chosen = i;
      break;
    }
  }
  if (chosen == upstream_sockets_.size()) {
    if (for_dest >= kSocketsPerResolver || upstream_sockets_.size() >= kMaxUpstreamSockets) {
      ++core_.counters.overload;
      return;
    }
    auto fd = core_.OpenUpstreamSocket(SOCK_DGRAM, dest);
    if (!fd.ok()) {
      ++core_.counters.upstream_errors;
      return;
    }
    upstream_sockets_.push_back(UpstreamSocket{*fd, dest});
  }
  UpstreamSocket& u = upstream_sockets_[chosen];
  Queue(u.fd, nullptr, message);
  ++core_.counters.passed;
  std::unique_ptr<PendingUdp> p;
  if (spare_pending_.empty()) {
    p = std::make_unique<PendingUdp>();
  } else {
    p = std::move(spare_pending_.back());
    spare_pending_.pop_back();
  }
  p->key = PendingKey(chosen, id);
  p->client = client;
  p->listener = listener;
  p->udp_fd = udp_fd;
  p->deadline = SteadyClock::now() + std::chrono::milliseconds(core_.options.upstream_timeout_ms);
  p->query.assign(message.begin(), message.end());
  p->decision = std::move(decision);
  u.ids_in_use[id] = true;
  expiry_.emplace_back(p->deadline, p->key);
  pending_.emplace(p->key, std::move(p));
  ++core_.counters.outstanding;
}

void DnsUdpRelay::HandleUpstreamReply(PendingUdp& p, std::span<const uint8_t> reply) {
  if (p.decision.counters) {  // a DELAY rule matched the query itself
    SendUdpAnswer(p.udp_fd, p.client, DnsWire(reply.begin(), reply.end()), p.decision.delay_ms,
                  p.decision.counters, p.listener);
    return;
  }
  Decision r = core_.rules.DecideReply(p.query, reply, p.decision.qtype, p.listener->scope,
                                       DnsTransport::kUdp);
  switch (r.kind) {
    case Decision::Kind::kRespond:
      SendUdpAnswer(p.udp_fd, p.client, std::move(r.response), r.delay_ms, r.counters, p.listener);
      break;
    case Decision::Kind::kDrop:
      ++core_.counters.faulted;
      DnsRuleTable::CountFaulted(r.counters);
      break;
    default:
      if (r.counters || r.delay_ms > 0) {
        SendUdpAnswer(p.udp_fd, p.client, DnsWire(reply.begin(), reply.end()), r.delay_ms,
                      r.counters, p.listener);
      } else {
        Queue(p.udp_fd, &p.client, reply);  // byte-for-byte, in the next sendmmsg
      }
  }
}

}  // namespace faultline::agent::dns::internal
