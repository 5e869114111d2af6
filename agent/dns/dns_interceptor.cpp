#include "agent/dns/dns_interceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace faultline::agent::dns {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr size_t kMaxDnsMessage = 65535;
// Datagrams read per poll wake-up, so a flood on the listener cannot starve upstream replies.
constexpr int kUdpBatch = 64;

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

// DNS over TCP: a two-byte big-endian length, then the message.
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

// One forwarded UDP query waiting for the upstream's reply on its own connected socket. A socket
// per query gives each a fresh source port, so replies cannot be confused between clients.
struct DnsInterceptor::PendingUdp {
  int fd = -1;
  SocketAddress client;
  SteadyClock::time_point deadline;
};

DnsInterceptor::DnsInterceptor(DnsInterceptorOptions options) : options_(std::move(options)) {}

DnsInterceptor::~DnsInterceptor() { Stop(); }

Result<int> DnsInterceptor::OpenUpstreamSocket(int type) {
  int fd = socket(upstream_.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
  if (connect(fd, upstream_.get(), upstream_.length) != 0 && errno != EINPROGRESS) {
    Status s = Unavailable(ErrnoText("connect to upstream"));
    close(fd);
    return s;
  }
  return fd;
}

Status DnsInterceptor::Start() {
  if (started_) return FailedPrecondition("DNS interceptor already started");
  auto upstream = ParseSocketAddress(options_.upstream, 53);
  if (!upstream.ok()) return InvalidArgument("upstream: " + upstream.status().message());
  upstream_ = *upstream;
  auto listen = ParseSocketAddress(options_.listen_address, options_.port);
  if (!listen.ok()) return InvalidArgument("listen address: " + listen.status().message());

  // Fail now, with a clear reason, rather than on the first forwarded query.
  auto probe = OpenUpstreamSocket(SOCK_DGRAM);
  if (!probe.ok()) return probe.status();
  close(*probe);

  // With port 0 the kernel picks the UDP port; TCP must get the same one, which can be taken,
  // so try a few times.
  Status last = Unavailable("cannot bind");
  for (int attempt = 0; attempt < 20 && udp_fd_ < 0; ++attempt) {
    SocketAddress addr = *listen;
    int u = socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int t = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (u >= 0 && t >= 0) setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (u < 0 || t < 0 || bind(u, addr.get(), addr.length) != 0) {
      last = Unavailable(ErrnoText("bind UDP listener"));
      if (u >= 0) close(u);
      if (t >= 0) close(t);
      break;
    }
    socklen_t len = addr.length;
    getsockname(u, reinterpret_cast<sockaddr*>(&addr.storage), &len);
    if (bind(t, addr.get(), addr.length) != 0 || ::listen(t, 128) != 0) {
      last = Unavailable(ErrnoText("bind TCP listener"));
      close(u);
      close(t);
      if (options_.port != 0) break;
      continue;
    }
    udp_fd_ = u;
    tcp_fd_ = t;
    uint16_t port = addr.family() == AF_INET
                        ? ntohs(reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port)
                        : ntohs(reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port);
    port_ = port;
  }
  if (udp_fd_ < 0) return last;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    Status s = Unavailable(ErrnoText("eventfd"));
    close(udp_fd_);
    close(tcp_fd_);
    udp_fd_ = tcp_fd_ = -1;
    return s;
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
  for (auto& p : pending_) close(p->fd);
  outstanding_ -= static_cast<int64_t>(pending_.size());
  pending_.clear();
  close(udp_fd_);
  close(tcp_fd_);
  close(stop_fd_);
  udp_fd_ = tcp_fd_ = stop_fd_ = -1;
}

Result<DnsInterceptor::Counter> DnsInterceptor::AddRule(const std::string& fault_id,
                                                        DomainMatcher matcher,
                                                        v1::DnsFault::Mode mode) {
  if (mode == v1::DnsFault::MODE_UNSPECIFIED || !v1::DnsFault::Mode_IsValid(mode)) {
    return InvalidArgument("DNS rule " + fault_id + ": mode is unspecified or unknown");
  }
  std::lock_guard lock(rules_mu_);
  for (const auto& r : rules_) {
    if (r.fault_id == fault_id) return AlreadyExists("DNS rule " + fault_id + " already exists");
  }
  auto counter = std::make_shared<std::atomic<uint64_t>>(0);
  rules_.push_back(Rule{fault_id, std::move(matcher), mode, counter});
  return counter;
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
  s.outstanding = static_cast<uint64_t>(std::max<int64_t>(0, outstanding_.load()));
  return s;
}

DnsInterceptor::Decision DnsInterceptor::Decide(std::span<const uint8_t> message) {
  ++seen_;
  Decision d;
  auto question = ParseDnsQuery(message);
  if (!question.ok()) {
    ++malformed_;
    d.kind = Decision::Kind::kMalformed;
    return d;
  }
  v1::DnsFault::Mode mode = v1::DnsFault::MODE_UNSPECIFIED;
  {
    std::lock_guard lock(rules_mu_);
    for (const auto& r : rules_) {
      if (r.matcher.Matches(question->name)) {
        mode = r.mode;
        d.faulted = r.faulted;
        break;
      }
    }
  }
  if (!d.faulted) {
    d.kind = Decision::Kind::kForward;
    return d;
  }
  auto response = BuildFaultResponse(message, mode);
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
  }
  return d;
}

// Counted after the answer was sent, so whoever sees the counter move can already read the answer.
void DnsInterceptor::CountFaulted(const Counter& counter) {
  ++faulted_;
  ++*counter;
}

void DnsInterceptor::EventLoop() {
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({stop_fd_, POLLIN, 0});
    fds.push_back({udp_fd_, POLLIN, 0});
    fds.push_back({tcp_fd_, POLLIN, 0});
    auto next_deadline = SteadyClock::time_point::max();
    for (const auto& p : pending_) {
      fds.push_back({p->fd, POLLIN, 0});
      next_deadline = std::min(next_deadline, p->deadline);
    }
    int timeout = next_deadline == SteadyClock::time_point::max() ? -1 : MillisUntil(next_deadline);
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && fds[0].revents != 0) break;

    // Upstream replies first (index 3.. matches pending_ as it was when polled).
    std::vector<bool> done(pending_.size(), false);
    uint8_t buf[kMaxDnsMessage];
    for (size_t i = 0; n > 0 && i < pending_.size(); ++i) {
      if (fds[3 + i].revents == 0) continue;
      PendingUdp& p = *pending_[i];
      ssize_t got = recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (got < 0) {
        ++upstream_errors_;  // e.g. ICMP port unreachable: the client will time out and retry
      } else {
        sendto(udp_fd_, buf, static_cast<size_t>(got), MSG_DONTWAIT, p.client.get(),
               p.client.length);
      }
      done[i] = true;
    }
    auto now = SteadyClock::now();
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (!done[i] && pending_[i]->deadline <= now) {
        ++timeouts_;
        done[i] = true;
      }
    }
    size_t keep = 0;
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (done[i]) {
        close(pending_[i]->fd);
        --outstanding_;
      } else {
        pending_[keep++] = std::move(pending_[i]);
      }
    }
    pending_.resize(keep);

    if (n > 0 && fds[1].revents != 0) HandleUdpReadable();
    if (n > 0 && fds[2].revents != 0) AcceptTcp();
  }
}

void DnsInterceptor::HandleUdpReadable() {
  uint8_t buf[kMaxDnsMessage];
  for (int i = 0; i < kUdpBatch; ++i) {
    SocketAddress client;
    client.length = sizeof(client.storage);
    ssize_t got = recvfrom(udp_fd_, buf, sizeof(buf), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&client.storage), &client.length);
    if (got < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or an error we cannot act on
    }
    std::span<const uint8_t> message(buf, static_cast<size_t>(got));
    Decision d = Decide(message);
    switch (d.kind) {
      case Decision::Kind::kMalformed:
        break;
      case Decision::Kind::kDrop:
        CountFaulted(d.faulted);
        break;
      case Decision::Kind::kRespond:
        sendto(udp_fd_, d.response.data(), d.response.size(), MSG_DONTWAIT, client.get(),
               client.length);
        CountFaulted(d.faulted);
        break;
      case Decision::Kind::kForward:
        ForwardUdp(message, client);
        break;
    }
  }
}

void DnsInterceptor::ForwardUdp(std::span<const uint8_t> message, const SocketAddress& client) {
  if (pending_.size() >= static_cast<size_t>(std::max(1, options_.max_outstanding))) {
    ++overload_;
    return;
  }
  auto fd = OpenUpstreamSocket(SOCK_DGRAM);
  if (!fd.ok()) {
    ++upstream_errors_;
    return;
  }
  if (send(*fd, message.data(), message.size(), MSG_DONTWAIT) < 0) {
    ++upstream_errors_;
    close(*fd);
    return;
  }
  ++passed_;
  auto p = std::make_unique<PendingUdp>();
  p->fd = *fd;
  p->client = client;
  p->deadline = SteadyClock::now() + std::chrono::milliseconds(options_.upstream_timeout_ms);
  pending_.push_back(std::move(p));
  ++outstanding_;
}

void DnsInterceptor::AcceptTcp() {
  while (true) {
    int fd = accept4(tcp_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    {
      std::lock_guard lock(tcp_mu_);
      if (tcp_active_ >= std::max(1, options_.max_tcp_connections)) {
        ++tcp_rejected_;
        close(fd);
        continue;
      }
      ++tcp_active_;
    }
    std::thread([this, fd] {
      ServeTcp(fd);
      close(fd);
      // Last touch of `this`: Stop() waits for tcp_active_ to reach zero before tearing down.
      std::lock_guard lock(tcp_mu_);
      --tcp_active_;
      tcp_cv_.notify_all();
    }).detach();
  }
}

void DnsInterceptor::ServeTcp(int fd) {
  const auto idle = std::chrono::milliseconds(options_.tcp_idle_timeout_ms);
  const auto io = std::chrono::milliseconds(std::max(options_.upstream_timeout_ms, 1000));
  std::vector<uint8_t> message;
  while (true) {
    uint8_t len_buf[2];
    if (ReadFull(fd, len_buf, SteadyClock::now() + idle, stop_fd_) != WaitResult::kReady) return;
    size_t len = (static_cast<size_t>(len_buf[0]) << 8) | len_buf[1];
    message.resize(len);
    if (ReadFull(fd, message, SteadyClock::now() + io, stop_fd_) != WaitResult::kReady) return;
    Decision d = Decide(message);
    switch (d.kind) {
      case Decision::Kind::kMalformed:
        // A stream that carried garbage cannot be trusted to be in sync any more.
        return;
      case Decision::Kind::kDrop:
        // Keep the connection open and silent: the client times out, as with a dead resolver.
        CountFaulted(d.faulted);
        break;
      case Decision::Kind::kRespond: {
        DnsWire framed = Frame(d.response);
        WaitResult w = WriteFull(fd, framed, SteadyClock::now() + io, stop_fd_);
        CountFaulted(d.faulted);
        if (w != WaitResult::kReady) return;
        break;
      }
      case Decision::Kind::kForward: {
        auto reply = ForwardTcp(message);
        if (!reply.ok()) return;  // closing tells the client to retry elsewhere
        DnsWire framed = Frame(*reply);
        if (WriteFull(fd, framed, SteadyClock::now() + io, stop_fd_) != WaitResult::kReady) return;
        break;
      }
    }
  }
}

Result<DnsWire> DnsInterceptor::ForwardTcp(std::span<const uint8_t> message) {
  if (outstanding_.load() >= options_.max_outstanding) {
    ++overload_;
    return ResourceExhausted("too many outstanding upstream queries");
  }
  auto fd = OpenUpstreamSocket(SOCK_STREAM);
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
