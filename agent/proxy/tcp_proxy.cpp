#include "agent/proxy/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/host/accept_backoff.h"
#include "agent/host/original_destination.h"
#include "agent/proxy/internal/connection.h"
#include "agent/proxy/internal/flow.h"
#include "agent/proxy/proxy_rules.h"

// The loop: listeners, accept, timers, commands from other threads. A connection's logic is in
// internal/connection.*, a direction's in internal/flow.*, the toxics in internal/toxics.*.

namespace faultline::agent::proxy {
namespace {

using internal::CloseFd;
using internal::Connection;
using internal::kNever;
using internal::LoopContext;
using internal::SteadyClock;
using internal::Time;
using Toxic = v1::DependencyFault::Toxic;
using std::chrono::microseconds;

constexpr uint64_t kWakeTag = 3;
constexpr uint64_t kTimerTag = 7;
using host::kAcceptBackoff;  // a proxied connection closing resumes a paused listener sooner

// struct sched_attr of sched_setattr(2), first version (48 bytes); glibc 2.36 has no wrapper and
// <linux/sched/types.h> clashes with <sched.h>.
struct SchedAttr {
  uint32_t size = sizeof(SchedAttr);
  uint32_t sched_policy = 0;
  uint64_t sched_flags = 0;
  int32_t sched_nice = 0;
  uint32_t sched_priority = 0;
  uint64_t sched_runtime = 0;
  uint64_t sched_deadline = 0;
  uint64_t sched_period = 0;
};
static_assert(sizeof(SchedAttr) == 48);

void CloseWithReset(int& fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  CloseFd(fd);
}

bool SameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(&a);
    auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto* x = reinterpret_cast<const sockaddr_in6*>(&a);
  auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port &&
         std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

socklen_t AddressLength(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

struct FaultEntry {
  std::string id;
  ProxyRoute route;
  std::shared_ptr<ProxyCounters> counters;
  int fd[2] = {-1, -1};  // IPv4, IPv6 listeners
};

// A connection as the loop tracks it: its fault and its place in the timer heap.
struct ConnSlot {
  std::unique_ptr<Connection> conn;
  std::shared_ptr<FaultEntry> fault;
  Time scheduled = kNever;
};

}  // namespace

Evidence ProxyCounters::ToEvidence() const {
  Evidence e{{"connections_accepted", connections_accepted.load()},
             {"connections_affected", connections_affected.load()},
             {"connections_active", connections_active.load()},
             {"connections_refused_over_cap", connections_refused_over_cap.load()},
             {"connections_not_redirected", connections_not_redirected.load()},
             {"upstream_connect_failures", upstream_connect_failures.load()},
             {"connections_reset", connections_reset.load()},
             {"connections_timed_out", connections_timed_out.load()},
             {"connections_limited", connections_limited.load()},
             {"requests_seen", requests_seen.load()},
             {"requests_matched", requests_matched.load()},
             {"requests_aborted", requests_aborted.load()},
             {"requests_delayed", requests_delayed.load()},
             {"requests_uninspected", requests_uninspected.load()},
             {"bytes_upstream", bytes_upstream.load()},
             {"bytes_downstream", bytes_downstream.load()},
             {"bytes_delayed", bytes_delayed.load()},
             {"bytes_discarded", bytes_discarded.load()},
             {"bytes_spliced", bytes_spliced.load()},
             {"held_budget_stalls", held_budget_stalls.load()},
             {"connections_idle_closed", connections_idle_closed.load()},
             {"accept_failures", accept_failures.load()}};
  for (int i = 0; i < kToxicKinds; ++i) {
    const auto* field = Toxic::descriptor()->FindFieldByNumber(kFirstToxicField + i);
    if (field) e["toxic_" + field->name() + "_connections"] = toxic_connections[i].load();
  }
  return e;
}

struct TcpProxy::Impl {
  explicit Impl(const ProxyOptions& o) : ctx(o), options(ctx.options) {}

  LoopContext ctx;
  const ProxyOptions& options;
  int wake_fd = -1;
  int timer_fd = -1;
  std::thread thread;
  bool stopping = false;  // loop thread only

  std::mutex commands_mu;
  std::vector<std::function<void()>> commands;  // guarded by commands_mu

  // Loop thread only.
  std::map<std::string, std::shared_ptr<FaultEntry>> faults;
  std::unordered_map<uint64_t, std::shared_ptr<FaultEntry>> listeners;  // tag → fault
  std::unordered_map<uint64_t, ConnSlot> conns;
  uint64_t next_id = 1;
  using TimerEntry = std::pair<Time, uint64_t>;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers;
  Time armed = kNever;
  Time spin_window_start{};
  std::chrono::nanoseconds spun{};  // busy-waited in the window that began at spin_window_start

  // Listeners paused after accept() failed for lack of fds: resumed when a connection closes
  // (its fds are free again) or at accept_resume_at.
  struct PausedListener {
    std::weak_ptr<FaultEntry> fault;
    int which = 0;
    uint64_t tag = 0;
  };
  std::vector<PausedListener> paused;
  Time accept_resume_at = kNever;
  // Idle connections are found by a sweep, not a timer per connection: its deadline moves with
  // every byte, and each move would leave a stale entry in the timer heap.
  Time next_idle_sweep = kNever;

  std::atomic<size_t> open{0};

  // ---- commands from other threads ----
  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(commands_mu);
      commands.push_back(std::move(fn));
    }
    uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof(one));
  }
  void RunCommands() {
    uint64_t n;
    (void)!::read(wake_fd, &n, sizeof(n));
    std::vector<std::function<void()>> todo;
    {
      std::lock_guard lock(commands_mu);
      todo.swap(commands);
    }
    for (auto& fn : todo) fn();
  }

  // ---- the loop ----
  void Loop() {
    // SIGPIPE is thread-directed: blocked here, a write to a closed peer cannot kill the agent.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    RequestShortSlice();
    epoll_event events[256];
    while (!stopping) {
      int n = epoll_wait(ctx.epoll_fd, events, 256, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        spdlog::error("proxy: epoll_wait: {}", std::strerror(errno));
        break;
      }
      for (int i = 0; i < n && !stopping; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kWakeTag) {
          RunCommands();
        } else if (tag == kTimerTag) {
          uint64_t expirations;
          (void)!::read(timer_fd, &expirations, sizeof(expirations));
          armed = kNever;
          RunTimers();
        } else if ((tag & 3) == 2) {
          auto it = listeners.find(tag);
          if (it != listeners.end()) Accept(it->second, tag);
        } else {
          const uint64_t id = tag >> 2;
          auto it = conns.find(id);
          if (it == conns.end()) continue;
          Settle(id, it->second.conn->OnEvent(static_cast<int>(tag & 1), events[i].events));
        }
      }
      RunTimers();
    }
    for (auto& [id, fault] : faults) CloseListeners(*fault);
    faults.clear();
    listeners.clear();
    while (!conns.empty()) Kill(conns.begin()->first, false);
  }

  // The loop sleeps, wakes on a socket or the timerfd, does a few microseconds of work and sleeps
  // again. Under EEVDF (Linux 6.12+) a waking task may wait for the running task's slice (~3 ms)
  // to end, so on a saturated CPU a release can be milliseconds late; a short slice request
  // (sched_attr.sched_runtime for SCHED_OTHER) makes the loop thread preempt at wake-up instead.
  // It changes latency only, not the CPU share; off by default (see ProxyOptions). Older
  // kernels ignore the field.
  void RequestShortSlice() {
    if (options.sched_slice_us <= 0) return;
    SchedAttr attr;
    attr.sched_policy = SCHED_OTHER;
    errno = 0;
    const int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
    attr.sched_nice = errno == 0 ? nice : 0;  // sched_setattr sets the nice value too: keep it
    attr.sched_runtime = static_cast<uint64_t>(options.sched_slice_us) * 1000;
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0) {
      spdlog::debug("proxy: sched_setattr(slice {} us): {}", options.sched_slice_us,
                    std::strerror(errno));
    }
  }

  // After a connection's Pump/OnEvent: keeps it (interest and timer updated) or ends it.
  void Settle(uint64_t id, Connection::Outcome outcome) {
    if (outcome != Connection::Outcome::kOpen) {
      Kill(id, outcome == Connection::Outcome::kReset);
      return;
    }
    ConnSlot& slot = conns.at(id);
    slot.conn->UpdateInterest();
    Schedule(slot, id, slot.conn->NextDeadline());
  }

  void Schedule(ConnSlot& slot, uint64_t id, Time when) {
    if (when == kNever || when == slot.scheduled) return;
    slot.scheduled = when;
    timers.push({when, id});
  }

  // Drops timer entries of closed connections and of deadlines that moved (lazily, here).
  void DropStaleTimers() {
    while (!timers.empty()) {
      auto it = conns.find(timers.top().second);
      if (it != conns.end() && it->second.scheduled == timers.top().first) return;
      timers.pop();
    }
  }

  // Whether the loop may busy-wait `d` now, within options.timer_spin_budget_us per second.
  bool MaySpin(Time now, std::chrono::nanoseconds d) {
    if (now - spin_window_start >= std::chrono::seconds(1)) {
      spin_window_start = now;
      spun = {};
    }
    return spun + d <= microseconds(options.timer_spin_budget_us);
  }

  void RunTimers() {
    Time now = SteadyClock::now();
    if (now >= accept_resume_at) ResumeListeners();
    if (now >= next_idle_sweep) SweepIdle(now);
    while (true) {
      while (!timers.empty() && timers.top().first <= now) {
        auto [when, id] = timers.top();
        timers.pop();
        auto it = conns.find(id);
        if (it == conns.end() || it->second.scheduled != when) continue;  // stale
        it->second.scheduled = kNever;
        Settle(id, it->second.conn->Pump());
        now = SteadyClock::now();
      }
      DropStaleTimers();
      if (timers.empty()) break;
      // The timerfd is armed timer_lead_us early (a wake-up from the timer interrupt measured
      // ~80-100 us late on this VM even on an idle CPU); the rest is waited out on the CPU so
      // a latency toxic releases on time, not late. Bounded by the spin budget.
      const auto wait = timers.top().first - now;
      if (wait > microseconds(options.timer_lead_us) || !MaySpin(now, wait)) break;
      spun += wait;
      const Time due = timers.top().first;
      while ((now = SteadyClock::now()) < due) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
    }
    Time next = timers.empty() ? kNever : timers.top().first;
    next = std::min({next, accept_resume_at, next_idle_sweep});
    // Early by the lead while the spin budget lasts; once spent, at the deadline itself (a
    // wake-up that could not spin would only re-arm).
    Time arm_at = next;
    if (next != kNever && options.timer_lead_us > 0 &&
        MaySpin(now, microseconds(options.timer_lead_us))) {
      arm_at = std::max(now, next - microseconds(options.timer_lead_us));
    }
    if (arm_at == armed) return;
    armed = arm_at;
    itimerspec spec{};
    if (arm_at != kNever) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(arm_at.time_since_epoch());
      spec.it_value.tv_sec = ns.count() / 1'000'000'000;
      spec.it_value.tv_nsec = ns.count() % 1'000'000'000;
      if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    ::timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  // ---- idle connections ----
  std::chrono::milliseconds IdleSweepPeriod() const {
    return std::chrono::milliseconds(std::clamp(options.idle_timeout_ms / 8, 10, 1000));
  }

  void SweepIdle(Time now) {
    const std::chrono::milliseconds timeout(options.idle_timeout_ms);
    std::vector<uint64_t> idle;
    for (auto& [id, slot] : conns) {
      if (slot.conn->MayIdle() && now >= slot.conn->IdleDeadline(timeout)) idle.push_back(id);
    }
    for (uint64_t id : idle) {
      ++conns.at(id).fault->counters->connections_idle_closed;
      Kill(id, false);
    }
    next_idle_sweep = conns.empty() ? kNever : now + IdleSweepPeriod();
  }

  // ---- listeners ----
  void CloseListeners(FaultEntry& f) {
    for (int& fd : f.fd) {
      if (fd >= 0) ::epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      CloseFd(fd);
    }
  }

  void PauseListener(const std::shared_ptr<FaultEntry>& fault, int which, uint64_t tag) {
    epoll_event e{};
    e.events = 0;
    e.data.u64 = tag;
    ::epoll_ctl(ctx.epoll_fd, EPOLL_CTL_MOD, fault->fd[which], &e);
    paused.push_back({fault, which, tag});
    accept_resume_at = std::min(accept_resume_at, SteadyClock::now() + kAcceptBackoff);
  }

  void ResumeListeners() {
    for (const PausedListener& p : paused) {
      auto fault = p.fault.lock();
      if (!fault || fault->fd[p.which] < 0) continue;  // removed meanwhile
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = p.tag;
      ::epoll_ctl(ctx.epoll_fd, EPOLL_CTL_MOD, fault->fd[p.which], &e);
    }
    paused.clear();
    accept_resume_at = kNever;
  }

  void Accept(const std::shared_ptr<FaultEntry>& fault, uint64_t tag) {
    const int which = static_cast<int>((tag >> 2) & 1);
    const int lfd = fault->fd[which];
    ProxyCounters& counters = *fault->counters;
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof(peer);
      int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (host::AcceptLacksResources(errno)) {
          // The connection stays in the backlog and the listener readable: retrying now would
          // spin. Stop watching it until an fd frees or the backoff passes.
          if (counters.accept_failures++ == 0) {
            spdlog::warn("proxy {}: accept: {} (pausing the listener)", fault->id,
                         std::strerror(errno));
          }
          PauseListener(fault, which, tag);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          spdlog::warn("proxy {}: accept: {}", fault->id, std::strerror(errno));
        }
        return;
      }
      ++counters.connections_accepted;
      if (conns.size() >= static_cast<size_t>(options.max_connections)) {
        ++counters.connections_refused_over_cap;
        CloseWithReset(fd);
        continue;
      }
      sockaddr_storage dst{};
      sockaddr_storage local{};
      socklen_t local_len = sizeof(local);
      Result<host::SocketAddress> original = host::TcpOriginalDestination(fd, peer.ss_family);
      if (original.ok()) dst = original->storage;
      bool redirected = original.ok() &&
                        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0 &&
                        !SameAddress(dst, local);
      if (!redirected) {
        if (!fault->route.fixed_upstream) {
          ++counters.connections_not_redirected;
          CloseWithReset(fd);
          continue;
        }
        dst = *fault->route.fixed_upstream;
      }
      StartConnection(fault, fd, dst);
    }
  }

  void StartConnection(const std::shared_ptr<FaultEntry>& fault, int client,
                       const sockaddr_storage& dst) {
    ProxyCounters& counters = *fault->counters;
    const Time now = SteadyClock::now();
    int upstream = ::socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (upstream >= 0 && options.socket_mark != 0 &&
        ::setsockopt(upstream, SOL_SOCKET, SO_MARK, &options.socket_mark,
                     sizeof(options.socket_mark)) != 0) {
      spdlog::warn("proxy {}: SO_MARK: {}", fault->id, std::strerror(errno));
      CloseFd(upstream);
    }
    if (upstream < 0 ||
        (::connect(upstream, reinterpret_cast<const sockaddr*>(&dst), AddressLength(dst)) != 0 &&
         errno != EINPROGRESS)) {
      ++counters.upstream_connect_failures;
      CloseFd(upstream);
      CloseWithReset(client);
      return;
    }
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    const uint64_t id = next_id++;
    auto conn = std::make_unique<Connection>(ctx, id, fault->counters, client, upstream, now);
    const v1::DependencyFault& spec = fault->route.fault;
    const ToxicPlan plan = PlanToxics(spec, [this] { return ctx.Uniform(); });
    if (!conn->Start(spec, plan)) {
      conn->Close(true);
      return;
    }
    ++counters.connections_active;
    conns.emplace(id, ConnSlot{std::move(conn), fault, kNever});
    open.store(conns.size());
    if (options.idle_timeout_ms > 0 && next_idle_sweep == kNever) {
      next_idle_sweep = now + IdleSweepPeriod();
    }
    Settle(id, Connection::Outcome::kOpen);
  }

  void Kill(uint64_t id, bool reset) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    it->second.conn->Close(reset);
    --it->second.fault->counters->connections_active;
    conns.erase(it);  // the flows give their queued chunks' cost back
    open.store(conns.size());
    if (!paused.empty()) ResumeListeners();  // this connection's fds are free again
  }
};

TcpProxy::TcpProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TcpProxy::~TcpProxy() { Stop(); }

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(ProxyOptions options) {
  auto impl = std::make_unique<Impl>(options);
  impl->ctx.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  impl->timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (impl->ctx.epoll_fd < 0 || impl->wake_fd < 0 || impl->timer_fd < 0) {
    Status s = Internal(std::string("proxy: epoll/eventfd/timerfd: ") + std::strerror(errno));
    CloseFd(impl->ctx.epoll_fd), CloseFd(impl->wake_fd), CloseFd(impl->timer_fd);
    return s;
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = kWakeTag;
  ::epoll_ctl(impl->ctx.epoll_fd, EPOLL_CTL_ADD, impl->wake_fd, &e);
  e.data.u64 = kTimerTag;
  ::epoll_ctl(impl->ctx.epoll_fd, EPOLL_CTL_ADD, impl->timer_fd, &e);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<TcpProxy>(new TcpProxy(std::move(impl)));
}

void TcpProxy::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl* impl = impl_.get();
  impl->Post([impl] { impl->stopping = true; });
  impl->thread.join();
  CloseFd(impl->ctx.epoll_fd);
  CloseFd(impl->wake_fd);
  CloseFd(impl->timer_fd);
}

namespace {

// A non-blocking listening socket on the loopback address of `family`, port `port` (0 = any).
int ListenLoopback(int family, uint16_t port) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage a{};
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_addr = in6addr_loopback;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), AddressLength(a)) != 0 ||
      ::listen(fd, 1024) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&a)->sin_port
                                      : reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
}

}  // namespace

Result<TcpProxy::Listening> TcpProxy::AddFault(const std::string& id, ProxyRoute route,
                                               std::shared_ptr<ProxyCounters> counters) {
  auto entry = std::make_shared<FaultEntry>();
  entry->id = id;
  entry->route = std::move(route);
  entry->counters = std::move(counters);
  Listening out;
  // The same port on [::1] as on 127.0.0.1, so one redirect port serves both families; a few
  // tries in case another socket holds the IPv6 port.
  for (int attempt = 0; attempt < 8 && entry->fd[0] < 0; ++attempt) {
    int v4 = ListenLoopback(AF_INET, 0);
    if (v4 < 0) break;
    uint16_t port = LocalPort(v4);
    int v6 = ListenLoopback(AF_INET6, port);
    if (v6 < 0 && errno == EADDRINUSE) {
      ::close(v4);
      continue;
    }
    entry->fd[0] = v4;
    entry->fd[1] = v6;
    out.port = port;
    out.ipv6 = v6 >= 0;
  }
  if (entry->fd[0] < 0) {
    return Unavailable(std::string("proxy: cannot listen on 127.0.0.1: ") + std::strerror(errno));
  }
  Impl* impl = impl_.get();
  std::promise<Status> done;
  auto result = done.get_future();
  impl->Post([impl, entry, &done] {
    if (impl->faults.count(entry->id)) {
      CloseFd(entry->fd[0]), CloseFd(entry->fd[1]);
      done.set_value(AlreadyExists("proxy: fault " + entry->id + " is already listening"));
      return;
    }
    const uint64_t base = impl->next_id++;
    for (int i = 0; i < 2; ++i) {
      if (entry->fd[i] < 0) continue;
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = (base << 3) | (static_cast<uint64_t>(i) << 2) | 2;
      ::epoll_ctl(impl->ctx.epoll_fd, EPOLL_CTL_ADD, entry->fd[i], &e);
      impl->listeners[e.data.u64] = entry;
    }
    impl->faults[entry->id] = entry;
    done.set_value(Status::Ok());
  });
  Status s = result.get();
  if (!s.ok()) return s;
  return out;
}

void TcpProxy::RemoveFault(const std::string& id) {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl* impl = impl_.get();
  std::promise<void> done;
  auto result = done.get_future();
  impl->Post([impl, id, &done] {
    auto it = impl->faults.find(id);
    if (it != impl->faults.end()) {
      std::shared_ptr<FaultEntry> entry = it->second;
      impl->CloseListeners(*entry);
      for (auto l = impl->listeners.begin(); l != impl->listeners.end();) {
        l = l->second == entry ? impl->listeners.erase(l) : std::next(l);
      }
      std::vector<uint64_t> doomed;
      for (auto& [cid, slot] : impl->conns) {
        if (slot.fault == entry) doomed.push_back(cid);
      }
      for (uint64_t cid : doomed) impl->Kill(cid, false);
      impl->faults.erase(it);
    }
    done.set_value();
  });
  result.wait();
}

size_t TcpProxy::open_connections() const { return impl_->open.load(); }
uint64_t TcpProxy::held_bytes() const { return impl_->ctx.held.load(); }

}  // namespace faultline::agent::proxy
