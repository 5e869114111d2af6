#include "agent/dns/dns_interceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldns/wire2host.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

namespace faultline::agent::dns {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr size_t kMaxDnsMessage = kMaxDnsMessageSize;
// How long TCP listeners stop accepting after accept() failed for lack of fds.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// Datagrams read per poll wake-up, so a flood on the listener cannot starve upstream replies.
constexpr int kUdpBatch = 64;
// getsockopt(SO_ORIGINAL_DST) (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST share the value;
// defined here because those kernel headers clash with the libc ones.
constexpr int kSoOriginalDst = 80;
// How long a UDP client address:port keeps its looked-up original destination. While conntrack
// has an entry for the flow, a datagram from that address:port to the redirect target can only
// belong to it (a second flow would clash on the reply tuple), and every datagram renews the
// entry for nf_conntrack_udp_timeout (30 s by default), so a second is far inside its life.
constexpr auto kOrigDstCacheTtl = std::chrono::seconds(1);
constexpr size_t kOrigDstCacheMax = 8192;

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

// TCP: the accepted connection's pre-redirect destination. NOT_FOUND when it was not NATed.
Result<SocketAddress> TcpOriginalDestination(int fd, int family) {
  SocketAddress out;
  out.length = sizeof(out.storage);
  int level = family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  if (getsockopt(fd, level, kSoOriginalDst, &out.storage, &out.length) != 0) {
    return NotFound("no original destination");
  }
  return out;
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

int MillisUntil(SteadyClock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::max<int64_t>(0, ms.count() + 1));
}

enum class WaitResult { kReady, kTimeout, kStopped, kError };

// Waits for `events` on fd until the deadline, or until the stop eventfd fires.
WaitResult WaitFd(int fd, short events, SteadyClock::time_point deadline, int stop_fd) {
  while (true) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n = poll(fds, 2, MillisUntil(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return WaitResult::kError;
    }
    if (fds[1].revents != 0) return WaitResult::kStopped;
    if (fds[0].revents != 0) return WaitResult::kReady;
    if (SteadyClock::now() >= deadline) return WaitResult::kTimeout;
  }
}

// Reads exactly buf.size() bytes from a non-blocking stream socket. kReady on success.
WaitResult ReadFull(int fd, std::span<uint8_t> buf, SteadyClock::time_point deadline, int stop_fd) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = recv(fd, buf.data() + got, buf.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return WaitResult::kError;  // peer closed
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return WaitResult::kError;
    WaitResult w = WaitFd(fd, POLLIN, deadline, stop_fd);
    if (w != WaitResult::kReady) return w;
  }
  return WaitResult::kReady;
}

WaitResult WriteFull(int fd, std::span<const uint8_t> buf, SteadyClock::time_point deadline,
                     int stop_fd) {
  size_t sent = 0;
  while (sent < buf.size()) {
    ssize_t n = send(fd, buf.data() + sent, buf.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return WaitResult::kError;
    WaitResult w = WaitFd(fd, POLLOUT, deadline, stop_fd);
    if (w != WaitResult::kReady) return w;
  }
  return WaitResult::kReady;
}

// DNS over TCP: a two-byte big-endian length, then the message. Precondition: the message fits
// (kMaxDnsMessageSize); callers check, since a wrong length would desynchronise the stream.
DnsWire Frame(std::span<const uint8_t> message) {
  DnsWire out;
  out.reserve(message.size() + 2);
  out.push_back(static_cast<uint8_t>(message.size() >> 8));
  out.push_back(static_cast<uint8_t>(message.size() & 0xff));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

}  // namespace

Result<SocketAddress> ParseSocketAddress(std::string_view text, uint16_t default_port) {
  std::string host(text);
  std::string port_text;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string::npos) return InvalidArgument("address '" + host + "': missing ']'");
    std::string rest = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return InvalidArgument("address '" + std::string(text) + "': bad port");
      port_text = rest.substr(1);
    }
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    size_t colon = host.find(':');
    port_text = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  uint16_t port = default_port;
  if (!port_text.empty() || (text.size() > 0 && text.back() == ':')) {
    if (port_text.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(), ::isdigit) ||
        std::stoi(port_text) > 65535) {
      return InvalidArgument("address '" + std::string(text) + "': bad port");
    }
    port = static_cast<uint16_t>(std::stoi(port_text));
  }
  SocketAddress addr;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addr.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addr.length = sizeof(sockaddr_in6);
  } else {
    return InvalidArgument("address '" + std::string(text) + "' is not a numeric IP address");
  }
  return addr;
}

// A listening address family: its UDP and TCP sockets.
struct ListenSocket {
  int family = AF_INET;
  int udp = -1;
  int tcp = -1;
  SocketAddress local;  // the bound address (port included)
};

// One listening port on every listen address; the main one has scope "".
struct DnsInterceptor::Listener {
  std::string scope;
  uint16_t port = 0;
  std::vector<ListenSocket> sockets;
  ~Listener() {
    for (auto& s : sockets) {
      if (s.udp >= 0) close(s.udp);
      if (s.tcp >= 0) close(s.tcp);
    }
  }
};

// One forwarded UDP query waiting for the upstream's reply on a pooled upstream socket. The
// query goes out unchanged (same transaction id), so two outstanding queries with the same id to
// the same resolver use different sockets; a reply is matched by socket and id.
struct DnsInterceptor::PendingUdp {
  uint64_t key = 0;  // PendingKey(socket index, id)
  SocketAddress client;
  std::shared_ptr<Listener> listener;  // keeps the reply socket open
  int udp_fd = -1;                     // the listener socket the query came in on
  SteadyClock::time_point deadline;
  DnsWire query;      // kept for a CNAME-triggered fault answer
  Decision decision;  // counters set: a DELAY rule's answer
};

// A UDP answer waiting for its send time.
struct DnsInterceptor::DelayedUdp {
  SteadyClock::time_point due;
  DnsWire answer;
  SocketAddress client;
  std::shared_ptr<Listener> listener;
  int udp_fd = -1;
  std::shared_ptr<DnsRuleCounters> counters;
};

// A connected, marked UDP socket to one resolver, shared by queries with distinct ids.
struct DnsInterceptor::UpstreamSocket {
  int fd = -1;
  SocketAddress dest;  // the resolver
  std::vector<bool> ids_in_use = std::vector<bool>(65536, false);
};

namespace {
uint64_t PendingKey(size_t socket, uint16_t id) { return (uint64_t{socket} << 16) | id; }
// Upstream sockets per resolver (queries sharing an id at the same time need one each) and in all.
constexpr size_t kSocketsPerResolver = 16;
constexpr size_t kMaxUpstreamSockets = 256;
// Finished PendingUdp objects kept for reuse, so a forwarded query allocates no new one.
constexpr size_t kPendingPool = 1024;
}  // namespace

bool DnsInterceptor::DelayedLater::operator()(const std::unique_ptr<DelayedUdp>& a,
                                              const std::unique_ptr<DelayedUdp>& b) const {
  return a->due > b->due;
}

DnsInterceptor::DnsInterceptor(DnsInterceptorOptions options) : options_(std::move(options)) {}

DnsInterceptor::~DnsInterceptor() { Stop(); }

Result<int> DnsInterceptor::OpenUpstreamSocket(int type, const SocketAddress& upstream) {
  int fd = socket(upstream.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(ErrnoText("socket"));
  if (options_.socket_mark != 0) {
    uint32_t mark = options_.socket_mark;
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

Result<std::shared_ptr<DnsInterceptor::Listener>> DnsInterceptor::OpenListener(
    const std::string& scope, uint16_t port) {
  auto listen = ParseSocketAddress(options_.listen_address, port);
  if (!listen.ok()) return InvalidArgument("listen address: " + listen.status().message());
  std::vector<SocketAddress> addrs = {*listen};
  if (options_.listen_ipv6_loopback && listen->family() != AF_INET6) {
    addrs.push_back(*ParseSocketAddress("::1", port));
  }
  // With port 0 the kernel picks the first UDP port; the other sockets must get the same one,
  // which can be taken, so try a few times.
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto l = std::make_shared<Listener>();
    l->scope = scope;
    uint16_t chosen = port;
    Status failed = Status::Ok();
    for (size_t i = 0; i < addrs.size() && failed.ok(); ++i) {
      SocketAddress addr = addrs[i];
      if (addr.family() == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port = htons(chosen);
      } else {
        reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port = htons(chosen);
      }
      ListenSocket ls;
      ls.family = addr.family();
      ls.udp = socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ls.tcp = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      if (ls.tcp >= 0) setsockopt(ls.tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (addr.family() == AF_INET6) {
        if (ls.udp >= 0) setsockopt(ls.udp, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (ls.tcp >= 0) setsockopt(ls.tcp, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      }
      bool ok = ls.udp >= 0 && ls.tcp >= 0 && bind(ls.udp, addr.get(), addr.length) == 0;
      if (ok) {
        socklen_t len = addr.length;
        getsockname(ls.udp, reinterpret_cast<sockaddr*>(&addr.storage), &len);
        chosen = PortOf(addr);
        ok = bind(ls.tcp, addr.get(), addr.length) == 0 && ::listen(ls.tcp, 128) == 0;
      }
      const int bind_errno = errno;
      ls.local = addr;
      if (ok) {
        l->sockets.push_back(ls);
        continue;
      }
      if (ls.udp >= 0) close(ls.udp);
      if (ls.tcp >= 0) close(ls.tcp);
      errno = bind_errno;
      failed = Unavailable(ErrnoText("bind DNS listener"));
      if (i > 0 && addr.family() == AF_INET6 &&
          (bind_errno == EADDRNOTAVAIL || bind_errno == EAFNOSUPPORT)) {
        spdlog::warn("dns interceptor: no IPv6 loopback here; listening on IPv4 only");
        failed = Status::Ok();
        continue;
      }
      // Port 0: a port free for the first socket may be taken for another; pick again.
      if (port != 0 || bind_errno != EADDRINUSE) return failed;
    }
    if (failed.ok()) {
      l->port = chosen;
      return l;
    }
  }
  return Unavailable("cannot bind a DNS listener: ports kept being taken");
}

Status DnsInterceptor::Start() {
  if (started_) return FailedPrecondition("DNS interceptor already started");
  auto upstream = ParseSocketAddress(options_.upstream, 53);
  if (!upstream.ok()) return InvalidArgument("upstream: " + upstream.status().message());
  upstream_ = *upstream;

  // Fail now, with a clear reason, rather than on the first forwarded query.
  auto probe = OpenUpstreamSocket(SOCK_DGRAM, upstream_);
  if (!probe.ok()) return probe.status();
  // Kept as the first pooled socket to the configured upstream.
  upstream_sockets_.push_back(UpstreamSocket{*probe, upstream_});
  if (options_.forward_to_original_destination) {
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

  auto main = OpenListener("", options_.port);
  if (!main.ok()) {
    close(upstream_sockets_.back().fd);
    upstream_sockets_.clear();
    return main.status();
  }
  port_ = (*main)->port;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0 || wake_fd_ < 0) {
    Status s = Unavailable(ErrnoText("eventfd"));
    if (stop_fd_ >= 0) close(stop_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    stop_fd_ = wake_fd_ = -1;
    for (auto& u : upstream_sockets_) close(u.fd);
    upstream_sockets_.clear();
    return s;
  }
  {
    std::lock_guard lock(listeners_mu_);
    listeners_ = {*main};
  }
  started_ = true;
  loop_ = std::thread([this] { EventLoop(); });
  return Status::Ok();
}

void DnsInterceptor::Stop() {
  if (!started_) return;
  started_ = false;
  uint64_t one = 1;
  ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  (void)ignored;
  if (loop_.joinable()) loop_.join();
  {
    // TCP threads watch stop_fd_ too; wait until the last one has left.
    std::unique_lock lock(tcp_mu_);
    tcp_cv_.wait(lock, [this] { return tcp_active_ == 0; });
  }
  outstanding_ -= static_cast<int64_t>(pending_.size());
  pending_.clear();
  expiry_.clear();
  for (auto& u : upstream_sockets_) close(u.fd);
  upstream_sockets_.clear();
  conntrack_.reset();
  orig_dst_cache_.clear();
  delayed_pending_ -= static_cast<int64_t>(delayed_.size());
  delayed_.clear();
  {
    std::lock_guard lock(listeners_mu_);
    listeners_.clear();
  }
  close(stop_fd_);
  close(wake_fd_);
  stop_fd_ = wake_fd_ = -1;
}

void DnsInterceptor::Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

Result<uint16_t> DnsInterceptor::AddScopedListener(const std::string& scope) {
  if (!started_) return FailedPrecondition("DNS interceptor not started");
  if (scope.empty()) return InvalidArgument("scope must not be empty");
  {
    std::lock_guard lock(listeners_mu_);
    for (const auto& l : listeners_) {
      if (l->scope == scope) return AlreadyExists("DNS listener for " + scope + " already open");
    }
  }
  auto l = OpenListener(scope, 0);
  if (!l.ok()) return l.status();
  uint16_t port = (*l)->port;
  {
    std::lock_guard lock(listeners_mu_);
    listeners_.push_back(*l);
  }
  Wake();
  return port;
}

void DnsInterceptor::RemoveScopedListener(const std::string& scope) {
  if (scope.empty()) return;
  std::lock_guard lock(listeners_mu_);
  // The event loop and TCP threads hold their own references; sockets close with the last one.
  std::erase_if(listeners_, [&](const auto& l) { return l->scope == scope; });
  if (wake_fd_ >= 0) Wake();
}

Result<std::shared_ptr<const DnsRuleCounters>> DnsInterceptor::AddRule(const std::string& fault_id,
                                                                       DnsRule rule) {
  const auto mode = rule.answer.mode;
  if (mode == v1::DnsFault::MODE_UNSPECIFIED || !v1::DnsFault::Mode_IsValid(mode)) {
    return InvalidArgument("DNS rule " + fault_id + ": mode is unspecified or unknown");
  }
  if (!(rule.probability > 0.0 && rule.probability <= 1.0)) {
    return InvalidArgument("DNS rule " + fault_id + ": probability must be in (0, 1]");
  }
  if (rule.delay_ms < 0 || rule.jitter_ms < 0) {
    return InvalidArgument("DNS rule " + fault_id + ": delays must not be negative");
  }
  if (mode == v1::DnsFault::DELAY && rule.delay_ms == 0 && rule.jitter_ms == 0) {
    return InvalidArgument("DNS rule " + fault_id + ": delay needs a delay");
  }
  std::lock_guard lock(rules_mu_);
  for (const auto& r : rules_) {
    if (r.fault_id == fault_id) return AlreadyExists("DNS rule " + fault_id + " already exists");
  }
  auto counters = std::make_shared<DnsRuleCounters>();
  rules_.push_back(Rule{fault_id, std::move(rule), counters});
  return std::shared_ptr<const DnsRuleCounters>(counters);
}

Result<DnsInterceptor::Counter> DnsInterceptor::AddRule(const std::string& fault_id,
                                                        DomainMatcher matcher,
                                                        v1::DnsFault::Mode mode) {
  DnsRule rule{std::move(matcher)};
  rule.answer.mode = mode;
  auto counters = AddRule(fault_id, std::move(rule));
  if (!counters.ok()) return counters.status();
  auto mutable_counters = std::const_pointer_cast<DnsRuleCounters>(*counters);
  return Counter(mutable_counters, &mutable_counters->faulted);
}

bool DnsInterceptor::RemoveRule(const std::string& fault_id) {
  std::lock_guard lock(rules_mu_);
  auto it = std::find_if(rules_.begin(), rules_.end(),
                         [&](const Rule& r) { return r.fault_id == fault_id; });
  if (it == rules_.end()) return false;
  rules_.erase(it);
  return true;
}

size_t DnsInterceptor::RuleCount() const {
  std::lock_guard lock(rules_mu_);
  return rules_.size();
}

DnsInterceptorStats DnsInterceptor::GetStats() const {
  DnsInterceptorStats s;
  s.queries_seen = seen_.load();
  s.queries_faulted = faulted_.load();
  s.queries_passed = passed_.load();
  s.malformed = malformed_.load();
  s.overload_dropped = overload_.load();
  s.upstream_timeouts = timeouts_.load();
  s.upstream_errors = upstream_errors_.load();
  s.tcp_rejected = tcp_rejected_.load();
  s.tcp_accept_failures = tcp_accept_failures_.load();
  s.outstanding = static_cast<uint64_t>(std::max<int64_t>(0, outstanding_.load()));
  s.delayed_pending = delayed_pending_.load();
  s.original_destination = orig_dst_.load();
  return s;
}

int DnsInterceptor::JitteredDelay(int delay_ms, int jitter_ms) {
  if (jitter_ms <= 0) return delay_ms;
  std::uniform_int_distribution<int> d(-jitter_ms, jitter_ms);
  return std::max(0, delay_ms + d(Rng()));
}

namespace {

bool TypeMatches(const std::vector<uint16_t>& qtypes, uint16_t qtype) {
  return qtypes.empty() || std::find(qtypes.begin(), qtypes.end(), qtype) != qtypes.end();
}

bool Spared(double probability) {
  if (probability >= 1.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(Rng()) >= probability;
}

}  // namespace

DnsInterceptor::Decision DnsInterceptor::Decide(std::span<const uint8_t> message,
                                                const std::string& scope) {
  ++seen_;
  Decision d;
  // Almost every query is plain and read without ldns (no allocation once the thread's name
  // buffer has grown); anything else takes the full ldns parse, which also rejects garbage.
  thread_local DnsQuestion plain;
  DnsQuestion* question = &plain;
  Result<DnsQuestion> parsed = InvalidArgument("unparsed");
  if (!ParsePlainDnsQuery(message, &plain)) {
    parsed = ParseDnsQuery(message);
    if (!parsed.ok()) {
      ++malformed_;
      d.kind = Decision::Kind::kMalformed;
      return d;
    }
    question = &*parsed;
  }
  d.qtype = question->qtype;
  FaultAnswer answer;
  int delay_ms = 0;
  {
    std::lock_guard lock(rules_mu_);
    for (const auto& r : rules_) {
      if (!r.rule.scope.empty() && r.rule.scope != scope) continue;
      if (!TypeMatches(r.rule.qtypes, question->qtype)) continue;
      if (!r.rule.matcher.MatchesNormalized(question->name)) continue;
      ++r.counters->seen;
      if (Spared(r.rule.probability)) {
        ++r.counters->passed;
        break;
      }
      d.counters = r.counters;
      answer = r.rule.answer;
      delay_ms = JitteredDelay(r.rule.delay_ms, r.rule.jitter_ms);
      break;
    }
  }
  if (!d.counters || answer.mode == v1::DnsFault::DELAY) {
    d.kind = Decision::Kind::kForward;
    d.delay_ms = delay_ms;
    return d;
  }
  auto response = BuildFaultResponse(message, answer);
  if (!response.ok()) {
    ++malformed_;
    d.kind = Decision::Kind::kMalformed;
    return d;
  }
  if (!response->has_value()) {
    d.kind = Decision::Kind::kDrop;
  } else {
    d.kind = Decision::Kind::kRespond;
    d.response = std::move(**response);
    d.delay_ms = delay_ms;
  }
  return d;
}

DnsInterceptor::Decision DnsInterceptor::DecideReply(std::span<const uint8_t> query,
                                                     std::span<const uint8_t> reply, uint16_t qtype,
                                                     const std::string& scope) {
  Decision d;
  d.kind = Decision::Kind::kForward;
  {
    std::lock_guard lock(rules_mu_);
    if (rules_.empty()) return d;
  }
  // Only answers that carry a CNAME can be redirected into a faulted name; a cheap scan of the
  // answer section spares the ldns parse of every other reply.
  if (!MayHaveCname(reply)) return d;
  std::vector<std::string> targets = CnameTargets(reply);
  if (targets.empty()) return d;
  FaultAnswer answer;
  {
    std::lock_guard lock(rules_mu_);
    for (const auto& r : rules_) {
      if (!r.rule.scope.empty() && r.rule.scope != scope) continue;
      if (!TypeMatches(r.rule.qtypes, qtype)) continue;
      bool hit = std::any_of(targets.begin(), targets.end(), [&](const std::string& t) {
        return r.rule.matcher.MatchesNormalized(t);
      });
      if (!hit) continue;
      ++r.counters->seen;
      if (Spared(r.rule.probability)) {
        ++r.counters->passed;
        return d;
      }
      ++r.counters->via_cname;
      d.counters = r.counters;
      answer = r.rule.answer;
      d.delay_ms = JitteredDelay(r.rule.delay_ms, r.rule.jitter_ms);
      break;
    }
  }
  if (!d.counters || answer.mode == v1::DnsFault::DELAY) return d;  // the reply itself, late
  auto response = BuildFaultResponse(query, answer);
  if (!response.ok()) {
    d.counters.reset();
    return d;
  }
  if (!response->has_value()) {
    d.kind = Decision::Kind::kDrop;
  } else {
    d.kind = Decision::Kind::kRespond;
    d.response = std::move(**response);
  }
  return d;
}

// Counted after the answer was sent, so whoever sees the counter move can already read the answer.
void DnsInterceptor::CountFaulted(const std::shared_ptr<DnsRuleCounters>& counters) {
  if (!counters) return;
  ++counters->faulted;
}

void DnsInterceptor::SendUdpAnswer(int udp_fd, const SocketAddress& client, DnsWire answer,
                                   int delay_ms, std::shared_ptr<DnsRuleCounters> counters,
                                   std::shared_ptr<Listener> listener) {
  if (delay_ms <= 0) {
    sendto(udp_fd, answer.data(), answer.size(), MSG_DONTWAIT, client.get(), client.length);
    if (counters) {
      ++faulted_;
      CountFaulted(counters);
    }
    return;
  }
  if (delayed_.size() >= static_cast<size_t>(std::max(1, options_.max_outstanding))) {
    ++overload_;
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
  std::push_heap(delayed_.begin(), delayed_.end(), DelayedLater());
  ++delayed_pending_;
}

void DnsInterceptor::EventLoop() {
  std::vector<pollfd> fds;
  struct Source {
    std::shared_ptr<Listener> listener;
    const ListenSocket* socket;
    bool udp;
  };
  std::vector<Source> sources;
  std::vector<std::shared_ptr<Listener>> listeners;
  // The poll set is rebuilt only when it changes: listeners (wake_fd_) or upstream sockets.
  bool rebuild = true;
  size_t first_upstream = 0;
  while (true) {
    if (rebuild || fds.size() - first_upstream != upstream_sockets_.size()) {
      {
        std::lock_guard lock(listeners_mu_);
        listeners = listeners_;
      }
      fds.clear();
      sources.clear();
      fds.push_back({stop_fd_, POLLIN, 0});
      fds.push_back({wake_fd_, POLLIN, 0});
      for (const auto& l : listeners) {
        for (const auto& s : l->sockets) {
          fds.push_back({s.udp, POLLIN, 0});
          sources.push_back({l, &s, true});
          fds.push_back({s.tcp, POLLIN, 0});
          sources.push_back({l, &s, false});
        }
      }
      first_upstream = fds.size();
      for (const auto& u : upstream_sockets_) fds.push_back({u.fd, POLLIN, 0});
      rebuild = false;
    }
    auto next_deadline = SteadyClock::time_point::max();
    const bool accept_paused = SteadyClock::now() < accept_paused_until_;
    for (size_t i = 0; i < sources.size(); ++i) {
      if (!sources[i].udp) fds[2 + i].events = accept_paused ? 0 : POLLIN;
    }
    if (accept_paused) next_deadline = accept_paused_until_;
    if (!expiry_.empty()) next_deadline = std::min(next_deadline, expiry_.front().first);
    if (!delayed_.empty()) next_deadline = std::min(next_deadline, delayed_.front()->due);
    int timeout = next_deadline == SteadyClock::time_point::max() ? -1 : MillisUntil(next_deadline);
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && fds[0].revents != 0) break;
    if (n > 0 && fds[1].revents != 0) {
      uint64_t v;
      ssize_t ignored = read(wake_fd_, &v, sizeof(v));
      (void)ignored;
      rebuild = true;
    }

    // Upstream replies first (fds from first_upstream match upstream_sockets_ when polled).
    const size_t polled_upstreams = fds.size() - first_upstream;
    for (size_t i = 0; n > 0 && i < polled_upstreams; ++i) {
      if (fds[first_upstream + i].revents == 0) continue;
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
        ++upstream_errors_;  // e.g. ICMP port unreachable: the client will time out and retry
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
        --outstanding_;
        HandleUpstreamReply(*owned, std::span<const uint8_t>(reply, msgs[k].msg_len));
        // Back to the pool (its query buffer keeps its capacity).
        owned->listener.reset();
        owned->decision = Decision();
        if (spare_pending_.size() < kPendingPool) spare_pending_.push_back(std::move(owned));
      }
    }
    FlushOutbox();
    auto now = SteadyClock::now();
    // Every query has the same timeout, so expiry_ is in deadline order.
    while (!expiry_.empty() && expiry_.front().first <= now) {
      auto it = pending_.find(expiry_.front().second);
      if (it != pending_.end() && it->second->deadline <= now) {
        upstream_sockets_[it->first >> 16].ids_in_use[it->first & 0xffff] = false;
        pending_.erase(it);
        --outstanding_;
        ++timeouts_;
      }
      expiry_.pop_front();
    }

    while (!delayed_.empty() && delayed_.front()->due <= now) {
      std::pop_heap(delayed_.begin(), delayed_.end(), DelayedLater());
      std::unique_ptr<DelayedUdp> d = std::move(delayed_.back());
      delayed_.pop_back();
      --delayed_pending_;
      sendto(d->udp_fd, d->answer.data(), d->answer.size(), MSG_DONTWAIT, d->client.get(),
             d->client.length);
      if (d->counters) {
        ++faulted_;
        CountFaulted(d->counters);
      }
    }

    for (size_t i = 0; n > 0 && i < sources.size(); ++i) {
      if (fds[2 + i].revents == 0) continue;
      if (sources[i].udp) {
        HandleUdpReadable(sources[i].listener, sources[i].socket->udp, sources[i].socket->local);
      } else {
        AcceptTcp(sources[i].socket->tcp, sources[i].listener->scope);
      }
    }
  }
}

void DnsInterceptor::HandleUdpReadable(const std::shared_ptr<Listener>& listener, int udp_fd,
                                       const SocketAddress& local) {
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
    decisions[i] = Decide(std::span<const uint8_t>(Slot(i), msgs[i].msg_len), listener->scope);
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
        ++faulted_;
        CountFaulted(d.counters);
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

size_t DnsInterceptor::FlowKeyHash::operator()(const FlowKey& k) const {
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

void DnsInterceptor::ResolveUdpDestinations(const SocketAddress* clients,
                                            const SocketAddress& local, uint16_t port,
                                            std::span<const int> which, SocketAddress* dests) {
  for (int i : which) dests[i] = upstream_;
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

uint8_t* DnsInterceptor::Slot(int i) {
  if (arena_.empty()) arena_.resize(static_cast<size_t>(kUdpBatch) * kMaxDnsMessage);
  return arena_.data() + static_cast<size_t>(i) * kMaxDnsMessage;
}

void DnsInterceptor::Queue(int fd, const SocketAddress* to, std::span<const uint8_t> bytes) {
  OutDatagram d;
  d.fd = fd;
  if (to != nullptr) d.to = *to;
  d.offset = out_bytes_.size();
  d.length = bytes.size();
  out_bytes_.insert(out_bytes_.end(), bytes.begin(), bytes.end());
  outbox_.push_back(d);
}

void DnsInterceptor::FlushOutbox() {
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

void DnsInterceptor::ForwardUdp(std::span<const uint8_t> message, const SocketAddress& client,
                                const SocketAddress& dest,
                                const std::shared_ptr<Listener>& listener, int udp_fd,
                                Decision decision) {
  if (pending_.size() >= static_cast<size_t>(std::max(1, options_.max_outstanding))) {
    ++overload_;
    return;
  }
  if (!SameAddress(dest, upstream_)) ++orig_dst_;
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
      ++overload_;
      return;
    }
    auto fd = OpenUpstreamSocket(SOCK_DGRAM, dest);
    if (!fd.ok()) {
      ++upstream_errors_;
      return;
    }
    upstream_sockets_.push_back(UpstreamSocket{*fd, dest});
  }
  UpstreamSocket& u = upstream_sockets_[chosen];
  Queue(u.fd, nullptr, message);
  ++passed_;
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
  p->deadline = SteadyClock::now() + std::chrono::milliseconds(options_.upstream_timeout_ms);
  p->query.assign(message.begin(), message.end());
  p->decision = std::move(decision);
  u.ids_in_use[id] = true;
  expiry_.emplace_back(p->deadline, p->key);
  pending_.emplace(p->key, std::move(p));
  ++outstanding_;
}

void DnsInterceptor::HandleUpstreamReply(PendingUdp& p, std::span<const uint8_t> reply) {
  if (p.decision.counters) {  // a DELAY rule matched the query itself
    SendUdpAnswer(p.udp_fd, p.client, DnsWire(reply.begin(), reply.end()), p.decision.delay_ms,
                  p.decision.counters, p.listener);
    return;
  }
  Decision r = DecideReply(p.query, reply, p.decision.qtype, p.listener->scope);
  switch (r.kind) {
    case Decision::Kind::kRespond:
      SendUdpAnswer(p.udp_fd, p.client, std::move(r.response), r.delay_ms, r.counters, p.listener);
      break;
    case Decision::Kind::kDrop:
      ++faulted_;
      CountFaulted(r.counters);
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

void DnsInterceptor::AcceptTcp(int tcp_fd, const std::string& scope) {
  while (true) {
    int fd = accept4(tcp_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays in the backlog and the listener readable: polling it again at
        // once would spin. The event loop leaves TCP listeners out until the backoff passes.
        ++tcp_accept_failures_;
        accept_paused_until_ = SteadyClock::now() + kAcceptBackoff;
      }
      return;
    }
    {
      std::lock_guard lock(tcp_mu_);
      if (tcp_active_ >= std::max(1, options_.max_tcp_connections)) {
        ++tcp_rejected_;
        close(fd);
        continue;
      }
      ++tcp_active_;
    }
    std::thread([this, fd, scope] {
      ServeTcp(fd, scope);
      close(fd);
      // Last touch of `this`: Stop() waits for tcp_active_ to reach zero before tearing down.
      std::lock_guard lock(tcp_mu_);
      --tcp_active_;
      tcp_cv_.notify_all();
    }).detach();
  }
}

void DnsInterceptor::ServeTcp(int fd, const std::string& scope) {
  const auto idle = std::chrono::milliseconds(options_.tcp_idle_timeout_ms);
  const auto io = std::chrono::milliseconds(std::max(options_.upstream_timeout_ms, 1000));
  // The resolver the client connected to, before the redirect.
  SocketAddress upstream = upstream_;
  if (options_.forward_to_original_destination) {
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    auto orig = TcpOriginalDestination(fd, local.ss_family);
    SocketAddress self;
    self.storage = local;
    self.length = local_len;
    if (orig.ok() && !(IsLoopback(*orig) && PortOf(*orig) == PortOf(self))) {
      upstream = *orig;
      ++orig_dst_;
    }
  }
  // Waits out an injected delay; false when the interceptor stops meanwhile.
  auto wait_delay = [&](int delay_ms) -> bool {
    if (delay_ms <= 0) return true;
    pollfd p{stop_fd_, POLLIN, 0};
    return poll(&p, 1, delay_ms) == 0;
  };
  std::vector<uint8_t> message;
  while (true) {
    uint8_t len_buf[2];
    if (ReadFull(fd, len_buf, SteadyClock::now() + idle, stop_fd_) != WaitResult::kReady) return;
    size_t len = (static_cast<size_t>(len_buf[0]) << 8) | len_buf[1];
    message.resize(len);
    if (ReadFull(fd, message, SteadyClock::now() + io, stop_fd_) != WaitResult::kReady) return;
    Decision d = Decide(message, scope);
    if (d.kind == Decision::Kind::kForward) {
      auto reply = ForwardTcp(message, upstream);
      if (!reply.ok()) return;  // closing tells the client to retry elsewhere
      if (!d.counters) d = DecideReply(message, *reply, d.qtype, scope);
      if (d.kind == Decision::Kind::kForward) {
        // The upstream's answer: as is, or late for a DELAY rule (counters set).
        d.kind = Decision::Kind::kRespond;
        d.response = std::move(*reply);
      }
    }
    switch (d.kind) {
      case Decision::Kind::kMalformed:
        // A stream that carried garbage cannot be trusted to be in sync any more.
        return;
      case Decision::Kind::kDrop:
        // Keep the connection open and silent: the client times out, as with a dead resolver.
        ++faulted_;
        CountFaulted(d.counters);
        break;
      case Decision::Kind::kRespond:
      case Decision::Kind::kForward: {  // kForward became kRespond above
        // Fault answers are capped (BuildFaultResponse) and relayed ones arrived framed, so this
        // cannot happen; if it did, closing is right and a wrong length prefix is not.
        if (d.response.size() > kMaxDnsMessageSize) return;
        if (!wait_delay(d.delay_ms)) return;
        DnsWire framed = Frame(d.response);
        WaitResult w = WriteFull(fd, framed, SteadyClock::now() + io, stop_fd_);
        if (d.counters) {
          ++faulted_;
          CountFaulted(d.counters);
        }
        if (w != WaitResult::kReady) return;
        break;
      }
    }
  }
}

Result<DnsWire> DnsInterceptor::ForwardTcp(std::span<const uint8_t> message,
                                           const SocketAddress& upstream) {
  if (outstanding_.load() >= options_.max_outstanding) {
    ++overload_;
    return ResourceExhausted("too many outstanding upstream queries");
  }
  auto fd = OpenUpstreamSocket(SOCK_STREAM, upstream);
  if (!fd.ok()) {
    ++upstream_errors_;
    return fd.status();
  }
  ++passed_;
  ++outstanding_;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(options_.upstream_timeout_ms);
  Result<DnsWire> result = Unavailable("upstream failed");
  auto fail = [&](WaitResult w) {
    if (w == WaitResult::kTimeout) {
      ++timeouts_;
      result = DeadlineExceeded("upstream timed out");
    } else if (w == WaitResult::kError) {
      ++upstream_errors_;
    }
  };
  // A non-blocking connect completes (or fails) when the socket becomes writable.
  WaitResult w = WaitFd(*fd, POLLOUT, deadline, stop_fd_);
  int so_error = 0;
  socklen_t so_len = sizeof(so_error);
  if (w == WaitResult::kReady &&
      (getsockopt(*fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0 || so_error != 0)) {
    w = WaitResult::kError;
  }
  uint8_t len_buf[2];
  DnsWire reply;
  if (w == WaitResult::kReady) w = WriteFull(*fd, Frame(message), deadline, stop_fd_);
  if (w == WaitResult::kReady) w = ReadFull(*fd, len_buf, deadline, stop_fd_);
  if (w == WaitResult::kReady) {
    reply.resize((static_cast<size_t>(len_buf[0]) << 8) | len_buf[1]);
    w = ReadFull(*fd, reply, deadline, stop_fd_);
  }
  if (w == WaitResult::kReady) {
    result = std::move(reply);
  } else {
    fail(w);
  }
  close(*fd);
  --outstanding_;
  return result;
}

}  // namespace faultline::agent::dns
