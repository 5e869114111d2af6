#include "agent/dns/dns_interceptor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "agent/dns/internal/interceptor_core.h"
#include "agent/dns/internal/rule_table.h"
#include "agent/dns/internal/tcp_server.h"
#include "agent/dns/internal/udp_relay.h"

// The interceptor itself: listeners, the event loop that polls them (and the UDP relay's
// upstream sockets), start and stop. Decisions: internal/rule_table.*; UDP: internal/udp_relay.*;
// TCP: internal/tcp_server.*.

namespace faultline::agent::dns {

using internal::ErrnoText;
using internal::Listener;
using internal::ListenSocket;
using internal::MillisUntil;
using internal::PortOf;
using internal::SteadyClock;

namespace {

// How long TCP listeners stop accepting after accept() failed for lack of fds.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

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

struct DnsInterceptor::Impl {
  explicit Impl(DnsInterceptorOptions options) : core(std::move(options)), relay(core), tcp(core) {}

  internal::InterceptorCore core;
  internal::DnsUdpRelay relay;  // event loop only (after Start)
  internal::DnsTcpServer tcp;
  std::atomic<uint16_t> port{0};
  int wake_fd = -1;  // eventfd: listeners changed, rebuild the poll set
  bool started = false;
  std::thread loop;
  mutable std::mutex listeners_mu;
  std::vector<std::shared_ptr<Listener>> listeners;  // [0] = the main listener
  // TCP listeners are not polled until then (accept failed for lack of fds); event loop only.
  SteadyClock::time_point accept_paused_until{};

  Result<std::shared_ptr<Listener>> OpenListener(const std::string& scope, uint16_t port) {
    auto listen = ParseSocketAddress(core.options.listen_address, port);
    if (!listen.ok()) return InvalidArgument("listen address: " + listen.status().message());
    std::vector<SocketAddress> addrs = {*listen};
    if (core.options.listen_ipv6_loopback && listen->family() != AF_INET6) {
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

  void Wake() {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd, &one, sizeof(one));
    (void)ignored;
  }

  void AcceptTcp(int tcp_fd, const std::string& scope) {
    while (true) {
      int fd = accept4(tcp_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // The connection stays in the backlog and the listener readable: polling it again at
          // once would spin. The loop leaves TCP listeners out until the backoff passes.
          ++core.counters.tcp_accept_failures;
          accept_paused_until = SteadyClock::now() + kAcceptBackoff;
        }
        return;
      }
      if (!tcp.Submit(fd, scope)) {
        ++core.counters.tcp_rejected;
        close(fd);
      }
    }
  }

  void EventLoop() {
    std::vector<pollfd> fds;
    struct Source {
      std::shared_ptr<Listener> listener;
      const ListenSocket* socket;
      bool udp;
    };
    std::vector<Source> sources;
    std::vector<std::shared_ptr<Listener>> polled;
    // The poll set is rebuilt only when it changes: listeners (wake_fd) or upstream sockets.
    bool rebuild = true;
    size_t first_upstream = 0;
    while (true) {
      if (rebuild || fds.size() - first_upstream != relay.upstream_count()) {
        {
          std::lock_guard lock(listeners_mu);
          polled = listeners;
        }
        fds.clear();
        sources.clear();
        fds.push_back({core.stop_fd, POLLIN, 0});
        fds.push_back({wake_fd, POLLIN, 0});
        for (const auto& l : polled) {
          for (const auto& s : l->sockets) {
            fds.push_back({s.udp, POLLIN, 0});
            sources.push_back({l, &s, true});
            fds.push_back({s.tcp, POLLIN, 0});
            sources.push_back({l, &s, false});
          }
        }
        first_upstream = fds.size();
        for (size_t i = 0; i < relay.upstream_count(); ++i) {
          fds.push_back({relay.upstream_fd(i), POLLIN, 0});
        }
        rebuild = false;
      }
      auto next_deadline = relay.NextDeadline();
      const bool accept_paused = SteadyClock::now() < accept_paused_until;
      for (size_t i = 0; i < sources.size(); ++i) {
        if (!sources[i].udp) fds[2 + i].events = accept_paused ? 0 : POLLIN;
      }
      if (accept_paused) next_deadline = std::min(next_deadline, accept_paused_until);
      int timeout =
          next_deadline == SteadyClock::time_point::max() ? -1 : MillisUntil(next_deadline);
      int n = poll(fds.data(), fds.size(), timeout);
      if (n < 0 && errno != EINTR) break;
      if (n > 0 && fds[0].revents != 0) break;
      if (n > 0 && fds[1].revents != 0) {
        uint64_t v;
        ssize_t ignored = read(wake_fd, &v, sizeof(v));
        (void)ignored;
        rebuild = true;
      }
      // Upstream replies first (fds from first_upstream match the relay's sockets when polled).
      const size_t polled_upstreams = fds.size() - first_upstream;
      for (size_t i = 0; n > 0 && i < polled_upstreams; ++i) {
        if (fds[first_upstream + i].revents != 0) relay.OnUpstreamReadable(i);
      }
      relay.RunDue(SteadyClock::now());
      for (size_t i = 0; n > 0 && i < sources.size(); ++i) {
        if (fds[2 + i].revents == 0) continue;
        if (sources[i].udp) {
          relay.OnListenerReadable(sources[i].listener, *sources[i].socket);
        } else {
          AcceptTcp(sources[i].socket->tcp, sources[i].listener->scope);
        }
      }
    }
  }
};

DnsInterceptor::DnsInterceptor(DnsInterceptorOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

DnsInterceptor::~DnsInterceptor() { Stop(); }

uint16_t DnsInterceptor::port() const { return impl_->port.load(); }

Status DnsInterceptor::Start() {
  Impl& m = *impl_;
  if (m.started) return FailedPrecondition("DNS interceptor already started");
  auto upstream = ParseSocketAddress(m.core.options.upstream, 53);
  if (!upstream.ok()) return InvalidArgument("upstream: " + upstream.status().message());
  m.core.upstream = *upstream;
  Status opened = m.relay.Open();
  if (!opened.ok()) return opened;
  auto main = m.OpenListener("", m.core.options.port);
  if (!main.ok()) {
    m.relay.Close();
    return main.status();
  }
  m.port = (*main)->port;
  m.core.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  m.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m.core.stop_fd < 0 || m.wake_fd < 0) {
    Status s = Unavailable(ErrnoText("eventfd"));
    if (m.core.stop_fd >= 0) close(m.core.stop_fd);
    if (m.wake_fd >= 0) close(m.wake_fd);
    m.core.stop_fd = m.wake_fd = -1;
    m.relay.Close();
    return s;
  }
  {
    std::lock_guard lock(m.listeners_mu);
    m.listeners = {*main};
  }
  m.started = true;
  m.loop = std::thread([&m] { m.EventLoop(); });
  return Status::Ok();
}

void DnsInterceptor::Stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.started = false;
  uint64_t one = 1;
  ssize_t ignored = write(m.core.stop_fd, &one, sizeof(one));
  (void)ignored;
  if (m.loop.joinable()) m.loop.join();
  m.tcp.Stop();  // its workers watch stop_fd too
  m.relay.Close();
  {
    std::lock_guard lock(m.listeners_mu);
    m.listeners.clear();
  }
  close(m.core.stop_fd);
  close(m.wake_fd);
  m.core.stop_fd = m.wake_fd = -1;
}

Result<uint16_t> DnsInterceptor::AddScopedListener(const std::string& scope) {
  Impl& m = *impl_;
  if (!m.started) return FailedPrecondition("DNS interceptor not started");
  if (scope.empty()) return InvalidArgument("scope must not be empty");
  {
    std::lock_guard lock(m.listeners_mu);
    for (const auto& l : m.listeners) {
      if (l->scope == scope) return AlreadyExists("DNS listener for " + scope + " already open");
    }
  }
  auto l = m.OpenListener(scope, 0);
  if (!l.ok()) return l.status();
  uint16_t port = (*l)->port;
  {
    std::lock_guard lock(m.listeners_mu);
    m.listeners.push_back(*l);
  }
  m.Wake();
  return port;
}

void DnsInterceptor::RemoveScopedListener(const std::string& scope) {
  Impl& m = *impl_;
  if (scope.empty()) return;
  std::lock_guard lock(m.listeners_mu);
  // The event loop holds its own references; sockets close with the last one.
  std::erase_if(m.listeners, [&](const auto& l) { return l->scope == scope; });
  if (m.wake_fd >= 0) m.Wake();
}

Result<std::shared_ptr<const DnsRuleCounters>> DnsInterceptor::AddRule(const std::string& fault_id,
                                                                       DnsRule rule) {
  return impl_->core.rules.Add(fault_id, std::move(rule));
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
  return impl_->core.rules.Remove(fault_id);
}

size_t DnsInterceptor::RuleCount() const { return impl_->core.rules.Count(); }

DnsInterceptorStats DnsInterceptor::GetStats() const {
  const internal::InterceptorCounters& c = impl_->core.counters;
  DnsInterceptorStats s;
  s.queries_seen = c.seen.load();
  s.queries_faulted = c.faulted.load();
  s.queries_passed = c.passed.load();
  s.malformed = c.malformed.load();
  s.overload_dropped = c.overload.load();
  s.upstream_timeouts = c.timeouts.load();
  s.upstream_errors = c.upstream_errors.load();
  s.tcp_rejected = c.tcp_rejected.load();
  s.tcp_accept_failures = c.tcp_accept_failures.load();
  s.outstanding = static_cast<uint64_t>(std::max<int64_t>(0, c.outstanding.load()));
  s.delayed_pending = c.delayed_pending.load();
  s.original_destination = c.orig_dst.load();
  return s;
}

}  // namespace faultline::agent::dns
