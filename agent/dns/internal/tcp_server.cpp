#include "agent/dns/internal/tcp_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/host/original_destination.h"

namespace faultline::agent::dns::internal {
namespace {

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

DnsTcpServer::~DnsTcpServer() { Stop(); }

bool DnsTcpServer::Submit(int fd, std::string scope) {
  std::lock_guard lock(mu_);
  const int cap = std::max(1, core_.options.max_tcp_connections);
  if (stopping_ || busy_ + static_cast<int>(queue_.size()) >= cap) return false;
  queue_.emplace_back(fd, std::move(scope));
  if (idle_ < static_cast<int>(queue_.size()) && static_cast<int>(workers_.size()) < cap) {
    workers_.emplace_back([this] { Work(); });
  }
  cv_.notify_one();
  return true;
}

void DnsTcpServer::Stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    workers.swap(workers_);
    cv_.notify_all();
  }
  for (auto& t : workers) t.join();
  std::lock_guard lock(mu_);
  for (auto& [fd, scope] : queue_) close(fd);
  queue_.clear();
}

int DnsTcpServer::connections() const {
  std::lock_guard lock(mu_);
  return busy_ + static_cast<int>(queue_.size());
}

void DnsTcpServer::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (stopping_) return;
    auto [fd, scope] = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    Serve(fd, scope);
    close(fd);
    lock.lock();
    --busy_;
  }
}

void DnsTcpServer::Serve(int fd, const std::string& scope) {
  const auto idle = std::chrono::milliseconds(core_.options.tcp_idle_timeout_ms);
  const auto io = std::chrono::milliseconds(std::max(core_.options.upstream_timeout_ms, 1000));
  // The resolver the client connected to, before the redirect.
  SocketAddress upstream = core_.upstream;
  if (core_.options.forward_to_original_destination) {
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    auto orig = host::TcpOriginalDestination(fd, local.ss_family);
    SocketAddress self;
    self.storage = local;
    self.length = local_len;
    if (orig.ok() && !(IsLoopback(*orig) && PortOf(*orig) == PortOf(self))) {
      upstream = *orig;
      ++core_.counters.orig_dst;
    }
  }
  // Waits out an injected delay; false when the interceptor stops meanwhile.
  auto wait_delay = [&](int delay_ms) -> bool {
    if (delay_ms <= 0) return true;
    pollfd p{core_.stop_fd, POLLIN, 0};
    return poll(&p, 1, delay_ms) == 0;
  };
  std::vector<uint8_t> message;
  while (true) {
    uint8_t len_buf[2];
    if (ReadFull(fd, len_buf, SteadyClock::now() + idle, core_.stop_fd) != WaitResult::kReady)
      return;
    size_t len = (static_cast<size_t>(len_buf[0]) << 8) | len_buf[1];
    message.resize(len);
    if (ReadFull(fd, message, SteadyClock::now() + io, core_.stop_fd) != WaitResult::kReady) return;
    Decision d = core_.rules.Decide(message, scope, DnsTransport::kTcp);
    if (d.kind == Decision::Kind::kForward) {
      auto reply = Forward(message, upstream);
      if (!reply.ok()) return;  // closing tells the client to retry elsewhere
      if (!d.counters)
        d = core_.rules.DecideReply(message, *reply, d.qtype, scope, DnsTransport::kTcp);
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
        ++core_.counters.faulted;
        DnsRuleTable::CountFaulted(d.counters);
        break;
      case Decision::Kind::kRespond:
      case Decision::Kind::kForward: {  // kForward became kRespond above
        // Fault answers are capped (BuildFaultResponse) and relayed ones arrived framed, so this
        // cannot happen; if it did, closing is right and a wrong length prefix is not.
        if (d.response.size() > kMaxDnsMessageSize) return;
        if (!wait_delay(d.delay_ms)) return;
        DnsWire framed = Frame(d.response);
        WaitResult w = WriteFull(fd, framed, SteadyClock::now() + io, core_.stop_fd);
        if (d.counters) {
          ++core_.counters.faulted;
          DnsRuleTable::CountFaulted(d.counters);
        }
        if (w != WaitResult::kReady) return;
        break;
      }
    }
  }
}

Result<DnsWire> DnsTcpServer::Forward(std::span<const uint8_t> message,
                                      const SocketAddress& upstream) {
  if (core_.counters.outstanding.load() >= core_.options.max_outstanding) {
    ++core_.counters.overload;
    return ResourceExhausted("too many outstanding upstream queries");
  }
  auto fd = core_.OpenUpstreamSocket(SOCK_STREAM, upstream);
  if (!fd.ok()) {
    ++core_.counters.upstream_errors;
    return fd.status();
  }
  ++core_.counters.passed;
  ++core_.counters.outstanding;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(core_.options.upstream_timeout_ms);
  Result<DnsWire> result = Unavailable("upstream failed");
  auto fail = [&](WaitResult w) {
    if (w == WaitResult::kTimeout) {
      ++core_.counters.timeouts;
      result = DeadlineExceeded("upstream timed out");
    } else if (w == WaitResult::kError) {
      ++core_.counters.upstream_errors;
    }
  };
  // A non-blocking connect completes (or fails) when the socket becomes writable.
  WaitResult w = WaitFd(*fd, POLLOUT, deadline, core_.stop_fd);
  int so_error = 0;
  socklen_t so_len = sizeof(so_error);
  if (w == WaitResult::kReady &&
      (getsockopt(*fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0 || so_error != 0)) {
    w = WaitResult::kError;
  }
  uint8_t len_buf[2];
  DnsWire reply;
  if (w == WaitResult::kReady) w = WriteFull(*fd, Frame(message), deadline, core_.stop_fd);
  if (w == WaitResult::kReady) w = ReadFull(*fd, len_buf, deadline, core_.stop_fd);
  if (w == WaitResult::kReady) {
    reply.resize((static_cast<size_t>(len_buf[0]) << 8) | len_buf[1]);
    w = ReadFull(*fd, reply, deadline, core_.stop_fd);
  }
  if (w == WaitResult::kReady) {
    result = std::move(reply);
  } else {
    fail(w);
  }
  close(*fd);
  --core_.counters.outstanding;
  return result;
}

}  // namespace faultline::agent::dns::internal
