#include "agent/dns/dns_interceptor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "agent/dns/internal/interceptor_core.h"
#include "agent/dns/internal/rule_table.h"
#include "agent/dns/internal/tcp_server.h"
#include "agent/dns/internal/udp_relay.h"

// The interceptor itself: listeners, the event loop (host::EventLoop) that watches them, the
// UDP relay's upstream sockets and the TCP connections, start and stop. Decisions:
// internal/rule_table.*; UDP: internal/udp_relay.*; TCP: internal/tcp_server.*.

namespace faultline::agent::dns {

using internal::ErrnoText;
using internal::KindOf;
using internal::Listener;
using internal::ListenSocket;
using internal::MakeTag;
using internal::PortOf;
using internal::SteadyClock;
using internal::TagIndex;
using internal::TagKind;

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

struct DnsInterceptor::Impl : host::EventLoop::Handler {
  explicit Impl(DnsInterceptorOptions options)
      : core(std::move(options)), relay(core), tcp(core, [this] { OnTcpClosed(); }) {}

  internal::InterceptorCore core;
  internal::DnsUdpRelay relay;  // event loop only (after Start)
  internal::DnsTcpServer tcp;   // event loop only (after Start)
  std::atomic<uint16_t> port{0};
  std::atomic<bool> started{false};
  bool ever_started = false;  // Start/Stop callers
  mutable std::mutex listeners_mu;
  std::vector<std::shared_ptr<Listener>> listeners;  // [0] = the main listener

  // Event loop only (or before it starts): the watched listener sockets by id (their tags'
  // index), the upstream sockets of the relay already watched, TCP listeners paused after
  // accept() failed for lack of fds (resumed when a TCP connection ends or at accept_resume_at).
  struct Watched {
    std::shared_ptr<Listener> listener;
    const ListenSocket* socket = nullptr;
  };
  std::unordered_map<uint64_t, Watched> watched;
  uint64_t next_watch_id = 1;
  size_t watched_upstreams = 0;
  std::vector<uint64_t> paused;
  SteadyClock::time_point accept_resume_at = SteadyClock::time_point::max();

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

  void Watch(const std::shared_ptr<Listener>& l) {
    for (const ListenSocket& s : l->sockets) {
      const uint64_t id = next_watch_id++;
      watched[id] = Watched{l, &s};
      core.loop->Watch(s.udp, EPOLLIN, MakeTag(TagKind::kUdpListener, id));
      core.loop->Watch(s.tcp, EPOLLIN, MakeTag(TagKind::kTcpListener, id));
    }
  }

  void Unwatch(const std::string& scope) {
    for (auto it = watched.begin(); it != watched.end();) {
      if (it->second.listener->scope != scope) {
        ++it;
        continue;
      }
      core.loop->Unwatch(it->second.socket->udp);
      core.loop->Unwatch(it->second.socket->tcp);
      it = watched.erase(it);  // the sockets close with the listener's last reference
    }
  }

  void AcceptTcp(uint64_t id) {
    auto it = watched.find(id);
    if (it == watched.end()) return;
    const Watched w = it->second;
    for (int i = 0; i < 64; ++i) {
      int fd = accept4(w.socket->tcp, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (host::IsAcceptExhaustion(errno)) {
          // The connection stays in the backlog and the listener readable: watching it again at
          // once would spin. Unwatched until a TCP connection ends or the backoff passes.
          ++core.counters.tcp_accept_failures;
          core.loop->Rewatch(w.socket->tcp, 0, MakeTag(TagKind::kTcpListener, id));
          paused.push_back(id);
          accept_resume_at = std::min(accept_resume_at, SteadyClock::now() + host::kAcceptBackoff);
        }
        return;
      }
      if (!tcp.Add(fd, w.listener->scope)) {
        ++core.counters.tcp_rejected;
        close(fd);
      }
    }
  }

  void ResumeListeners() {
    for (uint64_t id : paused) {
      auto it = watched.find(id);
      if (it == watched.end()) continue;  // removed meanwhile
      core.loop->Rewatch(it->second.socket->tcp, EPOLLIN, MakeTag(TagKind::kTcpListener, id));
    }
    paused.clear();
    accept_resume_at = SteadyClock::time_point::max();
  }

  void OnTcpClosed() {
    if (!paused.empty()) ResumeListeners();  // its fds are free again
  }

  // ---- host::EventLoop::Handler ----
  void OnEvent(uint64_t tag, uint32_t events) override {
    const uint64_t index = TagIndex(tag);
    switch (KindOf(tag)) {
      case TagKind::kUdpListener: {
        auto it = watched.find(index);
        if (it != watched.end()) relay.OnListenerReadable(it->second.listener, *it->second.socket);
        break;
      }
      case TagKind::kTcpListener:
        AcceptTcp(index);
        break;
      case TagKind::kUdpUpstream:
        if (index < relay.upstream_count()) relay.OnUpstreamReadable(index);
        break;
      case TagKind::kTcpClient:
      case TagKind::kTcpUpstream:
        tcp.OnEvent(tag, events);
        break;
    }
  }

  void OnTimer() override {}  // OnBatchEnd follows

  void OnBatchEnd() override {
    const auto now = SteadyClock::now();
    if (now >= accept_resume_at) ResumeListeners();
    relay.RunDue(now);
    tcp.RunDue(now);
    // The relay opens upstream sockets as resolvers appear; watch the new ones.
    for (; watched_upstreams < relay.upstream_count(); ++watched_upstreams) {
      core.loop->Watch(relay.upstream_fd(watched_upstreams), EPOLLIN,
                       MakeTag(TagKind::kUdpUpstream, watched_upstreams));
    }
    // Rounded up to the next millisecond (every deadline here is in ms): under load the earliest
    // upstream-timeout deadline moves with every query, and re-arming the timer for each move
    // would cost a system call (and a wake-up) per query.
    auto next = std::min({relay.NextDeadline(), tcp.NextDeadline(), accept_resume_at});
    if (next != SteadyClock::time_point::max()) {
      next = std::chrono::ceil<std::chrono::milliseconds>(next);
    }
    core.loop->ArmTimer(next);
  }
};

DnsInterceptor::DnsInterceptor(DnsInterceptorOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

DnsInterceptor::~DnsInterceptor() { Stop(); }

uint16_t DnsInterceptor::port() const { return impl_->port.load(); }

Status DnsInterceptor::Start() {
  Impl& m = *impl_;
  if (m.ever_started) return FailedPrecondition("DNS interceptor already started");
  auto upstream = ParseSocketAddress(m.core.options.upstream, 53);
  if (!upstream.ok()) return InvalidArgument("upstream: " + upstream.status().message());
  m.core.upstream = *upstream;
  auto loop = host::EventLoop::Create();
  if (!loop.ok()) return Unavailable("dns interceptor: " + loop.status().message());
  Status opened = m.relay.Open();
  if (!opened.ok()) return opened;
  auto main = m.OpenListener("", m.core.options.port);
  if (!main.ok()) {
    m.relay.Close();
    return main.status();
  }
  m.port = (*main)->port;
  {
    std::lock_guard lock(m.listeners_mu);
    m.listeners = {*main};
  }
  m.core.loop = std::move(*loop);
  m.Watch(*main);
  m.OnBatchEnd();  // watches the relay's first upstream socket
  m.ever_started = true;
  m.started = true;
  return m.core.loop->Start(m);
}

void DnsInterceptor::Stop() {
  Impl& m = *impl_;
  if (!m.started.exchange(false)) return;
  m.core.loop->Stop();  // joins the loop thread: what follows races with nothing
  m.tcp.Close();
  m.relay.Close();
  m.watched.clear();
  m.paused.clear();
  std::lock_guard lock(m.listeners_mu);
  m.listeners.clear();
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
  // Bound and listening already: queries wait in the socket until the loop watches it.
  std::shared_ptr<Listener> listener = *l;
  if (!m.core.loop->Post([&m, listener] { m.Watch(listener); })) {
    return FailedPrecondition("DNS interceptor stopped");
  }
  return port;
}

void DnsInterceptor::RemoveScopedListener(const std::string& scope) {
  Impl& m = *impl_;
  if (scope.empty()) return;
  {
    std::lock_guard lock(m.listeners_mu);
    std::erase_if(m.listeners, [&](const auto& l) { return l->scope == scope; });
  }
  // The loop holds its own references; the sockets close with the last one.
  if (m.started) m.core.loop->Post([&m, scope] { m.Unwatch(scope); });
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
