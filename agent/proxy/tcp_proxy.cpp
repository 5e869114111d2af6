#include "agent/proxy/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
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
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/proxy/proxy_rules.h"

namespace faultline::agent::proxy {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Time = SteadyClock::time_point;
using Toxic = v1::DependencyFault::Toxic;
using std::chrono::microseconds;

constexpr Time kNever = Time::max();
// getsockopt(SO_ORIGINAL_DST) (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST share the value;
// defined here because those kernel headers clash with the libc ones.
constexpr int kSoOriginalDst = 80;
constexpr uint64_t kWakeTag = 3;
constexpr uint64_t kTimerTag = 7;
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kSpliceChunk = 1 << 20;
// Work done per connection per wake-up before yielding to others (level-triggered epoll calls
// again when more is ready).
constexpr int kStepsPerWake = 16;
// Which directions an event concerns (Pump's `flows`).
constexpr unsigned kUpFlow = 1;
constexpr unsigned kDownFlow = 2;
constexpr unsigned kBothFlows = kUpFlow | kDownFlow;
// Bytes one direction may hold before it stops reading (on top of the global budget).
constexpr size_t kMaxQueuedPerFlow = 4 << 20;
// After an HTTP abort, how long the client's leftover bytes are drained before the close (so
// the close is a FIN after the response, not an RST that could destroy it).
constexpr auto kAbortLinger = std::chrono::seconds(1);

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

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

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

struct Chunk {
  std::string data;
  size_t off = 0;
  Time release;
  size_t cost = 0;  // what holding it allocated: ChunkCost, charged to the held budget
};

// Bytes the allocator gives a chunk beyond sizeof(Chunk) per heap block (header, rounding), and
// the deque's share per element (blocks of 512 bytes, a map of block pointers).
constexpr size_t kMallocOverhead = 16;
constexpr size_t kChunkOverhead = sizeof(Chunk) + 16;
// std::string keeps up to this many bytes inline (libstdc++), with no heap block.
constexpr size_t kInlineString = 15;

// Memory one queued chunk really holds: its slot in the queue plus its heap block if any. 1-byte
// slices cost ~65 bytes each, not 1: counting data bytes alone let the budget be exceeded 50-fold.
size_t ChunkCost(const Chunk& c) {
  const size_t cap = c.data.capacity();
  return kChunkOverhead + (cap > kInlineString ? cap + 1 + kMallocOverhead : 0);
}

// How long a listener that failed to accept for lack of fds pauses before it tries again (a
// proxied connection closing resumes it sooner).
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// One direction of a connection: bytes read from fd[src] are written to fd[dst].
struct Flow {
  int src = 0;
  int dst = 1;
  bool upstream = true;
  std::vector<Toxic> toxics;
  bool buffered = false;  // through user space (toxics or HTTP), else spliced
  // Spliced path.
  int pipe_r = -1;
  int pipe_w = -1;
  size_t pipe_capacity = 0;
  size_t in_pipe = 0;
  // Buffered path.
  std::deque<Chunk> queue;
  size_t queued = 0;  // sum of the queued chunks' cost (ChunkCost), not their bytes
  // The smallest piece the toxics cut bytes into, and how many cuts a read adds at most (each
  // slicing toxic may leave one short remainder): bounds a read's cost (see ReadAllowance).
  size_t min_piece = SIZE_MAX;
  size_t cutters = 0;
  Time last_release{};
  Time bandwidth_free{};
  bool discard = false;  // timeout toxic: nothing passes
  uint64_t limit = 0;    // limit_data: 0 = none
  uint64_t passed = 0;
  bool limit_hit = false;
  uint32_t slow_close_ms = 0;
  std::unique_ptr<HttpRequestGate> gate;
  HttpRequestGate::Counters gate_seen;  // what was already added to the fault's counters
  // Both paths.
  bool src_eof = false;
  Time eof_at{};
  bool dst_shut = false;
  bool write_blocked = false;

  bool Drained() const { return in_pipe == 0 && queue.empty(); }
  bool Done() const { return src_eof && Drained() && dst_shut; }
};

struct FaultEntry {
  std::string id;
  ProxyRoute route;
  std::shared_ptr<ProxyCounters> counters;
  int fd[2] = {-1, -1};  // IPv4, IPv6 listeners
  uint64_t tag = 0;
};

struct Conn {
  uint64_t id = 0;
  int fd[2] = {-1, -1};  // client, upstream
  bool registered[2] = {false, false};
  uint32_t events[2] = {0, 0};
  bool connecting = true;
  Time connect_deadline = kNever;
  Time reset_at = kNever;  // reset_peer
  Time close_at = kNever;  // timeout toxic
  bool aborted = false;    // HTTP abort sent: draining the client, then close
  Time linger_until = kNever;
  Time last_activity{};  // a byte moved either way (idle timeout)
  Flow up;
  Flow down;
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
  ProxyOptions options;
  int epoll_fd = -1;
  int wake_fd = -1;
  int timer_fd = -1;
  std::thread thread;
  bool stopping = false;  // loop thread only

  std::mutex commands_mu;
  std::vector<std::function<void()>> commands;  // guarded by commands_mu

  // Loop thread only.
  std::map<std::string, std::shared_ptr<FaultEntry>> faults;
  std::unordered_map<uint64_t, std::shared_ptr<FaultEntry>> listeners;  // tag → fault
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  uint64_t next_id = 1;
  using TimerEntry = std::pair<Time, uint64_t>;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers;
  Time armed = kNever;
  Time spin_window_start{};
  std::chrono::nanoseconds spun{};  // busy-waited in the window that began at spin_window_start
  std::mt19937_64 rng{std::random_device{}()};
  char buffer[kReadChunk];

  std::atomic<size_t> open{0};
  std::atomic<uint64_t> held{0};

  // Listeners paused after accept() failed for lack of fds (loop thread only): resumed when a
  // connection closes (its fds are free again) or at accept_resume_at.
  struct PausedListener {
    std::weak_ptr<FaultEntry> fault;
    int which = 0;
    uint64_t tag = 0;
  };
  std::vector<PausedListener> paused;
  Time accept_resume_at = kNever;
  // Idle connections are found by a sweep (not a timer per connection: its deadline moves with
  // every byte, and each move would leave a stale entry in the timer heap).
  Time next_idle_sweep = kNever;

  std::chrono::milliseconds IdleSweepPeriod() const {
    return std::chrono::milliseconds(std::clamp(options.idle_timeout_ms / 8, 10, 1000));
  }

  void SweepIdle(Time now) {
    std::vector<Conn*> idle;
    for (auto& [id, conn] : conns) {
      if (!conn->connecting && !conn->aborted && now >= IdleDeadline(*conn)) {
        idle.push_back(conn.get());
      }
    }
    for (Conn* c : idle) {
      ++c->fault->counters->connections_idle_closed;
      Kill(*c, false);
    }
    next_idle_sweep = conns.empty() ? kNever : now + IdleSweepPeriod();
  }

  double Uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

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
      int n = epoll_wait(epoll_fd, events, 256, -1);
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
          if (it != listeners.end()) Accept(it->second, events[i].data.u64);
        } else {
          auto it = conns.find(tag >> 2);
          if (it != conns.end()) OnEvent(*it->second, static_cast<int>(tag & 1), events[i].events);
        }
      }
      RunTimers();
    }
    for (auto& [id, fault] : faults) CloseListeners(*fault);
    faults.clear();
    listeners.clear();
    while (!conns.empty()) Kill(*conns.begin()->second, false);
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

  void Schedule(Conn& c, Time when) {
    if (when == kNever || when == c.scheduled) return;
    c.scheduled = when;
    timers.push({when, c.id});
  }

  // Drops timer entries of closed connections and of deadlines that moved (lazily, here).
  void DropStaleTimers() {
    while (!timers.empty()) {
      auto it = conns.find(timers.top().second);
      if (it != conns.end() && it->second->scheduled == timers.top().first) return;
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
        if (it == conns.end() || it->second->scheduled != when) continue;  // stale
        it->second->scheduled = kNever;
        Pump(*it->second);
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

  // ---- listeners ----
  void CloseListeners(FaultEntry& f) {
    for (int& fd : f.fd) {
      if (fd >= 0) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      CloseFd(fd);
    }
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
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
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
      socklen_t dst_len = sizeof(dst);
      sockaddr_storage local{};
      socklen_t local_len = sizeof(local);
      const int level = peer.ss_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
      bool redirected = ::getsockopt(fd, level, kSoOriginalDst, &dst, &dst_len) == 0 &&
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

  void PauseListener(const std::shared_ptr<FaultEntry>& fault, int which, uint64_t tag) {
    epoll_event e{};
    e.events = 0;
    e.data.u64 = tag;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fault->fd[which], &e);
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
      ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fault->fd[p.which], &e);
    }
    paused.clear();
    accept_resume_at = kNever;
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

    auto conn = std::make_unique<Conn>();
    Conn& c = *conn;
    c.id = next_id++;
    c.fd[0] = client;
    c.fd[1] = upstream;
    c.fault = fault;
    c.connect_deadline = now + std::chrono::milliseconds(options.connect_timeout_ms);
    c.last_activity = now;
    if (options.idle_timeout_ms > 0 && next_idle_sweep == kNever) {
      next_idle_sweep = now + IdleSweepPeriod();
    }
    c.up.src = 0;
    c.up.dst = 1;
    c.up.upstream = true;
    c.down.src = 1;
    c.down.dst = 0;
    c.down.upstream = false;

    const v1::DependencyFault& spec = fault->route.fault;
    ToxicPlan plan = PlanToxics(spec, [this] { return Uniform(); });
    c.up.toxics = std::move(plan.upstream);
    c.down.toxics = std::move(plan.downstream);
    if (!c.up.toxics.empty() || !c.down.toxics.empty()) ++counters.connections_affected;
    for (Flow* f : {&c.up, &c.down}) {
      for (const Toxic& t : f->toxics) {
        int index = static_cast<int>(t.kind_case()) - ProxyCounters::kFirstToxicField;
        if (index >= 0 && index < ProxyCounters::kToxicKinds) ++counters.toxic_connections[index];
        switch (t.kind_case()) {
          case Toxic::kResetPeer:
            c.reset_at =
                std::min(c.reset_at, now + std::chrono::milliseconds(t.reset_peer().timeout_ms()));
            break;
          case Toxic::kTimeout:
            f->discard = true;
            if (t.timeout().timeout_ms() > 0) {
              c.close_at =
                  std::min(c.close_at, now + std::chrono::milliseconds(t.timeout().timeout_ms()));
            }
            break;
          case Toxic::kSlowClose:
            f->slow_close_ms = std::max(f->slow_close_ms, t.slow_close().delay_ms());
            break;
          case Toxic::kLimitData:
            f->limit = f->limit == 0 ? t.limit_data().bytes()
                                     : std::min<uint64_t>(f->limit, t.limit_data().bytes());
            break;
          case Toxic::kSlicer: {
            const int64_t smallest =
                int64_t{t.slicer().average_size()} - int64_t{t.slicer().size_variation()};
            f->min_piece =
                std::min(f->min_piece, static_cast<size_t>(std::max<int64_t>(1, smallest)));
            ++f->cutters;
            break;
          }
          case Toxic::kBandwidth:
            f->min_piece =
                std::min(f->min_piece, static_cast<size_t>(std::max<uint64_t>(
                                           1, t.bandwidth().rate_bytes_per_second() / 50)));
            ++f->cutters;
            break;
          default:
            break;
        }
      }
      f->buffered = !f->toxics.empty() || !options.splice;
    }
    if (spec.has_http()) {
      c.up.buffered = true;
      c.up.gate = std::make_unique<HttpRequestGate>(spec.http(), [this] { return Uniform(); });
    }
    for (Flow* f : {&c.up, &c.down}) {
      if (f->buffered) continue;
      int p[2];
      if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        spdlog::warn("proxy {}: pipe2: {}", fault->id, std::strerror(errno));
        CloseFd(c.up.pipe_r), CloseFd(c.up.pipe_w);
        CloseWithReset(c.fd[0]);
        CloseFd(c.fd[1]);
        return;
      }
      if (options.pipe_size > 0) ::fcntl(p[1], F_SETPIPE_SZ, options.pipe_size);
      const int capacity = ::fcntl(p[1], F_GETPIPE_SZ);
      f->pipe_capacity = capacity > 0 ? static_cast<size_t>(capacity) : 0;
      f->pipe_r = p[0];
      f->pipe_w = p[1];
    }
    ++counters.connections_active;
    open.store(conns.size() + 1);
    Conn* raw = conn.get();
    conns.emplace(c.id, std::move(conn));
    UpdateInterest(*raw);
    Schedule(*raw, NextDeadline(*raw));
  }

  // ---- connections ----
  void OnEvent(Conn& c, int side, uint32_t ev) {
    const bool was_connecting = c.connecting;
    if (c.connecting && side == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(c.fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
        ++c.fault->counters->upstream_connect_failures;
        Kill(c, true);
        return;
      }
      if (!(ev & EPOLLOUT)) return;
      c.connecting = false;
    } else if (ev & EPOLLERR) {
      // A reset from one peer is passed on to the other as a reset.
      Kill(c, true);
      return;
    }
    const uint64_t id = c.id;
    // Only the directions this socket's readiness concerns: readable side s feeds the flow
    // reading from s, writable side s the flow writing to s. Stepping the other one too cost a
    // read() that returns EAGAIN per event on the request/response path.
    unsigned flows = kBothFlows;
    if (!was_connecting && !(ev & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))) {
      flows = 0;
      if (ev & EPOLLIN) flows |= side == 0 ? kUpFlow : kDownFlow;
      if (ev & EPOLLOUT) flows |= side == 0 ? kDownFlow : kUpFlow;
    }
    Pump(c, flows);
    if (!(ev & EPOLLHUP)) return;
    auto it = conns.find(id);
    if (it == conns.end()) return;
    // Both directions of this socket are closed. Data still due to it cannot arrive: give up;
    // otherwise stop watching it (level-triggered HUP would fire forever).
    Conn& alive = *it->second;
    Flow& into = side == 0 ? alive.down : alive.up;
    if (!into.Drained()) {
      Kill(alive, true);
      return;
    }
    if (alive.registered[side]) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, alive.fd[side], nullptr);
      alive.registered[side] = false;
    }
  }

  // Moves whatever can move now in `flows` (both on timers), fires due deadlines, closes
  // finished connections. Idempotent.
  void Pump(Conn& c, unsigned flows = kBothFlows) {
    ProxyCounters& counters = *c.fault->counters;
    const Time now = SteadyClock::now();
    if (now >= c.reset_at) {
      ++counters.connections_reset;
      Kill(c, true);
      return;
    }
    if (now >= c.close_at) {
      ++counters.connections_timed_out;
      Kill(c, false);
      return;
    }
    if (c.connecting) {
      if (now >= c.connect_deadline) {
        ++counters.upstream_connect_failures;
        Kill(c, true);
        return;
      }
      UpdateInterest(c);
      Schedule(c, NextDeadline(c));
      return;
    }
    if (c.aborted) {
      DrainAborted(c, now);
      return;
    }
    if ((flows & kUpFlow) && !Step(c, c.up, now)) {
      Kill(c, true);
      return;
    }
    if (c.aborted) {  // an HTTP abort closed the upstream side
      DrainAborted(c, now);
      return;
    }
    if ((flows & kDownFlow) && !Step(c, c.down, now)) {
      Kill(c, true);
      return;
    }
    for (Flow* f : {&c.up, &c.down}) {
      if (f->limit_hit && f->Drained()) {
        ++counters.connections_limited;
        Kill(c, false);
        return;
      }
    }
    if (c.up.Done() && c.down.Done()) {
      Kill(c, false);
      return;
    }
    UpdateInterest(c);
    Schedule(c, NextDeadline(c));
  }

  void DrainAborted(Conn& c, Time now) {
    while (true) {
      ssize_t n = ::read(c.fd[0], buffer, sizeof(buffer));
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Kill(c, false);  // EOF or error: the client is done
      return;
    }
    if (now >= c.linger_until) {
      Kill(c, false);
      return;
    }
    UpdateInterest(c);
    Schedule(c, c.linger_until);
  }

  bool WantsRead(const Conn& c, const Flow& f) const {
    if (c.connecting || f.src_eof || f.limit_hit) return false;
    if (c.aborted) return f.upstream;
    if (!f.buffered) return f.in_pipe == 0;
    return f.queued < kMaxQueuedPerFlow && held.load() < options.max_held_bytes;
  }

  void UpdateInterest(Conn& c) {
    for (int side = 0; side < 2; ++side) {
      const Flow& reading = side == 0 ? c.up : c.down;
      const Flow& writing = side == 0 ? c.down : c.up;
      uint32_t ev = 0;
      if (WantsRead(c, reading)) ev |= EPOLLIN;
      // A spliced direction that stopped at its step budget with bytes still in the pipe has no
      // readable event to come back on (it reads only into an empty pipe): the writable
      // destination brings it back at once. Without this the pipe sat full until some unrelated
      // wake-up (the 0.03 Gbit/s of the first splice measurements).
      const bool pipe_pending = !writing.buffered && writing.in_pipe > 0;
      if ((side == 1 && c.connecting) || ((writing.write_blocked || pipe_pending) && !c.aborted)) {
        ev |= EPOLLOUT;
      }
      if (c.fd[side] < 0) continue;
      if (!c.registered[side]) {
        // A socket whose both directions are done is left unwatched (see OnEvent).
        if (reading.src_eof && writing.dst_shut) continue;
        epoll_event e{};
        e.events = ev;
        e.data.u64 = (c.id << 2) | static_cast<uint64_t>(side);
        if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c.fd[side], &e) == 0) {
          c.registered[side] = true;
          c.events[side] = ev;
        }
        continue;
      }
      if (ev == c.events[side]) continue;
      epoll_event e{};
      e.events = ev;
      e.data.u64 = (c.id << 2) | static_cast<uint64_t>(side);
      ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd[side], &e);
      c.events[side] = ev;
    }
  }

  // When the connection counts as idle: idle_timeout_ms after the last byte moved, or after the
  // last queued chunk is due (bytes a toxic holds back are not idleness). kNever when off.
  Time IdleDeadline(const Conn& c) const {
    if (options.idle_timeout_ms <= 0) return kNever;
    Time from = c.last_activity;
    for (const Flow* f : {&c.up, &c.down}) {
      if (!f->queue.empty() && !f->write_blocked) from = std::max(from, f->queue.back().release);
    }
    return from + std::chrono::milliseconds(options.idle_timeout_ms);
  }

  Time NextDeadline(const Conn& c) const {
    Time t = std::min(c.reset_at, c.close_at);

    if (c.connecting) t = std::min(t, c.connect_deadline);
    if (c.aborted) t = std::min(t, c.linger_until);
    for (const Flow* f : {&c.up, &c.down}) {
      if (!f->queue.empty() && !f->write_blocked) t = std::min(t, f->queue.front().release);
      if (f->src_eof && f->Drained() && !f->dst_shut && f->slow_close_ms > 0) {
        t = std::min(t, f->eof_at + std::chrono::milliseconds(f->slow_close_ms));
      }
    }
    return t;
  }

  // One direction's progress. false on a socket error (the connection is then reset).
  bool Step(Conn& c, Flow& f, Time now) {
    return f.buffered ? StepBuffered(c, f, now) : StepSpliced(c, f);
  }

  bool StepSpliced(Conn& c, Flow& f) {
    ProxyCounters& counters = *c.fault->counters;
    auto& bytes = f.upstream ? counters.bytes_upstream : counters.bytes_downstream;
    bool source_drained = false;
    for (int i = 0; i < kStepsPerWake; ++i) {
      if (f.in_pipe > 0) {
        ssize_t n = ::splice(f.pipe_r, nullptr, c.fd[f.dst], nullptr, f.in_pipe,
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          c.last_activity = SteadyClock::now();
          f.in_pipe -= static_cast<size_t>(n);
          bytes += static_cast<uint64_t>(n);
          counters.bytes_spliced += static_cast<uint64_t>(n);
          f.write_blocked = false;
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          f.write_blocked = true;
          break;
        }
        return false;
      }
      if (f.src_eof || source_drained) break;
      ssize_t n = ::splice(c.fd[f.src], nullptr, f.pipe_w, nullptr, kSpliceChunk,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        c.last_activity = SteadyClock::now();
        f.in_pipe += static_cast<size_t>(n);
        // Less than a pipeful: the socket had no more (as for a short read, see StepBuffered).
        source_drained = static_cast<size_t>(n) < f.pipe_capacity;
        continue;
      }
      if (n == 0) {
        f.src_eof = true;
        break;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    if (f.src_eof && f.in_pipe == 0 && !f.dst_shut) {
      ::shutdown(c.fd[f.dst], SHUT_WR);
      f.dst_shut = true;
    }
    return true;
  }

  bool WriteDue(Conn& c, Flow& f, Time now) {
    ProxyCounters& counters = *c.fault->counters;
    auto& bytes = f.upstream ? counters.bytes_upstream : counters.bytes_downstream;
    while (!f.queue.empty() && f.queue.front().release <= now) {
      Chunk& chunk = f.queue.front();
      ssize_t n = ::send(c.fd[f.dst], chunk.data.data() + chunk.off, chunk.data.size() - chunk.off,
                         MSG_NOSIGNAL);
      if (n > 0) {
        c.last_activity = now;
        chunk.off += static_cast<size_t>(n);
        bytes += static_cast<uint64_t>(n);
        f.write_blocked = false;
        if (chunk.off == chunk.data.size()) {
          // Its memory is freed now, not byte by byte as it is sent.
          f.queued -= chunk.cost;
          held -= chunk.cost;
          f.queue.pop_front();
        }
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        f.write_blocked = true;
        return true;
      }
      return false;
    }
    return true;
  }

  bool StepBuffered(Conn& c, Flow& f, Time now) {
    if (!WriteDue(c, f, now)) return false;
    for (int i = 0; i < kStepsPerWake && WantsRead(c, f); ++i) {
      const size_t allowance = ReadAllowance(f);
      ssize_t n = ::read(c.fd[f.src], buffer, allowance);
      if (n > 0) {
        c.last_activity = now;
        Ingest(c, f, std::string_view(buffer, static_cast<size_t>(n)), now);
        if (c.aborted) return true;
        // A short read emptied the socket: no second read just to see EAGAIN (level-triggered
        // epoll reports whatever arrives later).
        if (static_cast<size_t>(n) < allowance) break;
        continue;
      }
      if (n == 0) {
        f.src_eof = true;
        f.eof_at = now;
        break;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    if (!f.src_eof && !f.limit_hit && f.queued < kMaxQueuedPerFlow &&
        held.load() >= options.max_held_bytes) {
      ++c.fault->counters->held_budget_stalls;
    }
    if (!WriteDue(c, f, now)) return false;
    if (f.src_eof && f.Drained() && !f.dst_shut) {
      if (f.slow_close_ms == 0 || now >= f.eof_at + std::chrono::milliseconds(f.slow_close_ms)) {
        ::shutdown(c.fd[f.dst], SHUT_WR);
        f.dst_shut = true;
      }
    }
    return true;
  }

  // How many bytes the flow may read now so that queueing them, cut into its toxics' smallest
  // pieces, stays within the held budget (at least 1: a read overshoots by one chunk at most).
  size_t ReadAllowance(const Flow& f) const {
    const uint64_t used = held.load();
    const uint64_t left = used < options.max_held_bytes ? options.max_held_bytes - used : 0;
    const size_t flow_left = kMaxQueuedPerFlow > f.queued ? kMaxQueuedPerFlow - f.queued : 0;
    uint64_t budget = std::min<uint64_t>(left, flow_left);
    // n bytes become at most n / min_piece + cutters + 1 chunks, each costing kChunkOverhead
    // plus its bytes (+1 and the heap block's overhead).
    const uint64_t per_chunk = kChunkOverhead + 1 + kMallocOverhead;
    const uint64_t fixed = (f.cutters + 1) * per_chunk;
    budget = budget > fixed ? budget - fixed : 0;
    uint64_t n = budget;
    if (f.min_piece != SIZE_MAX) {
      // n * (1 + per_chunk / min_piece) <= budget
      n = budget * f.min_piece / (f.min_piece + per_chunk);
    }
    return static_cast<size_t>(std::clamp<uint64_t>(n, 1, kReadChunk));
  }

  void Ingest(Conn& c, Flow& f, std::string_view data, Time now) {
    ProxyCounters& counters = *c.fault->counters;
    if (f.discard) {
      counters.bytes_discarded += data.size();
      return;
    }
    if (!f.gate) {
      Enqueue(c, f, std::string(data), now, now);
      return;
    }
    HttpRequestGate::Output out = f.gate->Feed(data);
    const auto& g = f.gate->counters();
    counters.requests_seen += g.requests_seen - f.gate_seen.requests_seen;
    counters.requests_matched += g.requests_matched - f.gate_seen.requests_matched;
    counters.requests_aborted += g.requests_aborted - f.gate_seen.requests_aborted;
    counters.requests_delayed += g.requests_delayed - f.gate_seen.requests_delayed;
    counters.requests_uninspected += g.uninspected - f.gate_seen.uninspected;
    const bool first_fault = f.gate_seen.requests_aborted + f.gate_seen.requests_delayed == 0 &&
                             f.toxics.empty() && c.down.toxics.empty();
    if (first_fault && g.requests_aborted + g.requests_delayed > 0) {
      ++counters.connections_affected;
    }
    f.gate_seen = g;
    for (auto& segment : out.forward) {
      Enqueue(c, f, std::move(segment.bytes), now + segment.delay, now);
    }
    if (out.abort) {
      // The response goes to the client now; the dependency never sees the request.
      (void)!::send(c.fd[0], out.response.data(), out.response.size(), MSG_NOSIGNAL);
      ::shutdown(c.fd[0], SHUT_WR);
      CloseFd(c.fd[1]);
      c.registered[1] = false;
      c.aborted = true;
      c.linger_until = now + kAbortLinger;
      f.discard = true;
    }
  }

  // Applies the direction's toxics to `bytes` (arriving now, not to be released before `floor`)
  // and queues the resulting timed chunks.
  void Enqueue(Conn& c, Flow& f, std::string bytes, Time floor, Time now) {
    if (bytes.empty()) return;
    if (f.limit > 0) {
      uint64_t left = f.limit - std::min(f.limit, f.passed);
      if (bytes.size() >= left) {
        bytes.resize(static_cast<size_t>(left));
        f.limit_hit = true;
      }
      f.passed += bytes.size();
      if (bytes.empty()) return;
    }
    std::vector<Chunk> pieces;
    pieces.push_back({std::move(bytes), 0, floor});
    for (const Toxic& t : f.toxics) {
      switch (t.kind_case()) {
        case Toxic::kLatency: {
          int64_t us = t.latency().latency_us();
          int64_t jitter = t.latency().jitter_us();
          if (jitter > 0) {
            us += std::uniform_int_distribution<int64_t>(-jitter, jitter)(rng);
          }
          for (Chunk& p : pieces) p.release += microseconds(std::max<int64_t>(0, us));
          break;
        }
        case Toxic::kSlicer: {
          const auto& s = t.slicer();
          std::vector<Chunk> sliced;
          for (Chunk& p : pieces) {
            Time at = p.release;
            size_t off = 0;
            while (off < p.data.size()) {
              int64_t size = s.average_size();
              if (s.size_variation() > 0) {
                size += std::uniform_int_distribution<int64_t>(-int64_t{s.size_variation()},
                                                               s.size_variation())(rng);
              }
              size_t take =
                  std::min(p.data.size() - off, static_cast<size_t>(std::max<int64_t>(1, size)));
              sliced.push_back({p.data.substr(off, take), 0, at});
              off += take;
              at += microseconds(s.delay_us());
            }
          }
          pieces = std::move(sliced);
          break;
        }
        case Toxic::kBandwidth: {
          const uint64_t rate = t.bandwidth().rate_bytes_per_second();
          // Pieces of at most 1/50 s of traffic, so the flow is smooth rather than bursty.
          const size_t max_piece = static_cast<size_t>(std::max<uint64_t>(1, rate / 50));
          std::vector<Chunk> paced;
          for (Chunk& p : pieces) {
            for (size_t off = 0; off < p.data.size(); off += max_piece) {
              size_t take = std::min(max_piece, p.data.size() - off);
              Time start = std::max(p.release, f.bandwidth_free);
              Time done = start + microseconds(static_cast<int64_t>(take * 1'000'000 / rate));
              f.bandwidth_free = done;
              paced.push_back({p.data.substr(off, take), 0, done});
            }
          }
          pieces = std::move(paced);
          break;
        }
        default:
          break;
      }
    }
    ProxyCounters& counters = *c.fault->counters;
    for (Chunk& p : pieces) {
      // Delivery stays in order whatever the jitter.
      p.release = std::max(p.release, f.last_release);
      f.last_release = p.release;
      if (p.release > now) counters.bytes_delayed += p.data.size();
      p.cost = ChunkCost(p);
      f.queued += p.cost;
      held += p.cost;
      f.queue.push_back(std::move(p));
    }
  }

  void Kill(Conn& c, bool reset) {
    if (!paused.empty()) ResumeListeners();  // this connection's fds are free again
    for (int side = 0; side < 2; ++side) {
      if (reset) {
        CloseWithReset(c.fd[side]);
      } else {
        CloseFd(c.fd[side]);
      }
    }
    for (Flow* f : {&c.up, &c.down}) {
      CloseFd(f->pipe_r);
      CloseFd(f->pipe_w);
      held -= f->queued;
      f->queued = 0;
    }
    --c.fault->counters->connections_active;
    conns.erase(c.id);  // destroys c
    open.store(conns.size());
  }
};

TcpProxy::TcpProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TcpProxy::~TcpProxy() { Stop(); }

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(ProxyOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  impl->timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (impl->epoll_fd < 0 || impl->wake_fd < 0 || impl->timer_fd < 0) {
    Status s = Internal(std::string("proxy: epoll/eventfd/timerfd: ") + std::strerror(errno));
    CloseFd(impl->epoll_fd), CloseFd(impl->wake_fd), CloseFd(impl->timer_fd);
    return s;
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = kWakeTag;
  ::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->wake_fd, &e);
  e.data.u64 = kTimerTag;
  ::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->timer_fd, &e);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<TcpProxy>(new TcpProxy(std::move(impl)));
}

void TcpProxy::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl* impl = impl_.get();
  impl->Post([impl] { impl->stopping = true; });
  impl->thread.join();
  CloseFd(impl->epoll_fd);
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
      ::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, entry->fd[i], &e);
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
      std::vector<Conn*> doomed;
      for (auto& [cid, conn] : impl->conns) {
        if (conn->fault == entry) doomed.push_back(conn.get());
      }
      for (Conn* c : doomed) impl->Kill(*c, false);
      impl->faults.erase(it);
    }
    done.set_value();
  });
  result.wait();
}

size_t TcpProxy::open_connections() const { return impl_->open.load(); }
uint64_t TcpProxy::held_bytes() const { return impl_->held.load(); }

}  // namespace faultline::agent::proxy
