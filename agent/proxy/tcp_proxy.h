#pragma once
// TcpProxy: the dependency fault's transparent TCP proxy. One event-loop thread (epoll,
// non-blocking sockets, a timerfd for every deadline) serves every active dependency fault; each
// fault has its own listener on 127.0.0.1 (and [::1]) that the fault's nft rule redirects to.
// An accepted connection learns its pre-redirect destination (SO_ORIGINAL_DST), connects onward
// from a socket carrying `socket_mark` (which the redirect rule exempts), and draws its toxics.
// A direction no toxic touches moves bytes with splice(2) through a pipe (zero-copy,
// ProxyOptions::splice, on by default); a direction with toxics or HTTP faults goes through a
// user-space queue of timed chunks, released by a timerfd armed with the earliest deadline.
//
// Bounds: at most max_connections proxied connections (more are reset at once and counted);
// at most max_held_bytes held in queues over all connections, counted as what the queued chunks
// really allocate, not their payload (a direction stops reading while the budget is spent, and
// reads no more than its toxics' cutting lets fit: back-pressure, never loss); an upstream that
// does not answer the connect within connect_timeout_ms is given up (the client is reset), so a
// black-holed dependency cannot grow the fd count beyond the cap; a connection idle for
// idle_timeout_ms is closed; an accept() that fails for lack of fds pauses the listener instead
// of spinning.
//
// Code: this file's loop (tcp_proxy.cpp) owns listeners and timers; a connection, one direction
// of it and the toxics are small classes under agent/proxy/internal/ (one FlowToxic strategy per
// toxic per direction).

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/fault_backend.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::proxy {

// Evidence of one fault; written by the loop thread, read by anyone.
struct ProxyCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_affected{0};  // got at least one toxic or a faulted request
  std::atomic<uint64_t> connections_active{0};
  std::atomic<uint64_t> connections_refused_over_cap{0};
  std::atomic<uint64_t> connections_not_redirected{0};  // reached the listener directly: closed
  std::atomic<uint64_t> upstream_connect_failures{0};
  std::atomic<uint64_t> connections_reset{0};      // reset_peer fired
  std::atomic<uint64_t> connections_timed_out{0};  // timeout toxic closed them
  std::atomic<uint64_t> connections_limited{0};    // limit_data closed them
  std::atomic<uint64_t> requests_seen{0};
  std::atomic<uint64_t> requests_matched{0};
  std::atomic<uint64_t> requests_aborted{0};
  std::atomic<uint64_t> requests_delayed{0};
  std::atomic<uint64_t> requests_uninspected{0};
  std::atomic<uint64_t> bytes_upstream{0};
  std::atomic<uint64_t> bytes_downstream{0};
  std::atomic<uint64_t> bytes_delayed{0};
  std::atomic<uint64_t> bytes_discarded{0};
  std::atomic<uint64_t> bytes_spliced{0};  // of bytes_upstream + bytes_downstream, zero-copy
  std::atomic<uint64_t> held_budget_stalls{0};
  std::atomic<uint64_t> connections_idle_closed{0};  // no byte either way for idle_timeout_ms
  // accept() failed for lack of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM): the listener then pauses
  // until a proxied connection closes or kAcceptBackoff passes, rather than spinning.
  std::atomic<uint64_t> accept_failures{0};
  // Connections that drew each toxic kind, indexed by Toxic::kind_case() - kFirstToxicField.
  static constexpr int kFirstToxicField = 10;
  static constexpr int kToxicKinds = 7;
  std::atomic<uint64_t> toxic_connections[kToxicKinds]{};

  Evidence ToEvidence() const;
};

struct ProxyOptions {
  uint32_t socket_mark = 0;  // SO_MARK on upstream sockets (needs CAP_NET_ADMIN); 0 = none
  int max_connections = 4096;
  uint64_t max_held_bytes = 64ull << 20;
  int connect_timeout_ms = 5000;
  // A proxied connection with no byte moving either way for this long is closed (FIN to both
  // peers) and counted in connections_idle_closed. 0 = never.
  int idle_timeout_ms = 3600 * 1000;
  // Pipe size for spliced directions (F_SETPIPE_SZ); 0 = the kernel default (64 KiB).
  int pipe_size = 256 * 1024;
  // true: directions no toxic touches move bytes with splice(2) through a pipe (zero-copy); a
  // quarter of the syscalls of read/write per byte and at least its throughput
  // (bench/RESULTS.md). false: every direction through user space (benchmark comparison).
  bool splice = true;
  // Scheduler slice requested for the loop thread, in microseconds (Linux 6.12+ EEVDF; the
  // kernel clamps to 100..100000). 0 = the kernel default, the default here: 100 cut a timer
  // wake-up's delay on CPUs saturated by nice'd builds from 2-4 ms to ~0.12 ms (median), but
  // added ~60 us to a 64-byte round trip through the proxy on a quiet machine (145 -> 205 us).
  int sched_slice_us = 0;
  // The timerfd fires this early and the loop busy-waits the rest, so a toxic's release is on
  // time rather than a timer wake-up late (~0.1 ms here); at most timer_spin_budget_us of
  // busy-waiting per second (then the timer is armed at the deadline itself). 0 = no lead.
  int timer_lead_us = 150;
  int timer_spin_budget_us = 20000;
};

// How one fault's listener treats its connections.
struct ProxyRoute {
  v1::DependencyFault fault;  // validated
  // Where connections that were not redirected go (tests and benchmarks without nft); unset =
  // such connections are closed and counted.
  std::optional<sockaddr_storage> fixed_upstream;
};

class TcpProxy {
 public:
  // Starts the event loop thread. INTERNAL when epoll/eventfd/timerfd cannot be created.
  static Result<std::unique_ptr<TcpProxy>> Start(ProxyOptions options);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  struct Listening {
    uint16_t port = 0;
    bool ipv6 = false;  // also listening on [::1]:port
  };
  // Listens for fault `id` on 127.0.0.1:<free port> (and [::1] on the same port when the host
  // has IPv6 loopback). ALREADY_EXISTS for an id that is listening; UNAVAILABLE when no socket
  // could be bound. Thread-safe.
  Result<Listening> AddFault(const std::string& id, ProxyRoute route,
                             std::shared_ptr<ProxyCounters> counters);
  // Closes the fault's listener and every connection it carries (FIN to both peers). Returns once
  // done. Idempotent; thread-safe.
  void RemoveFault(const std::string& id);
  // Stops the loop and closes everything. Idempotent.
  void Stop();
  // Proxied connections open right now (all faults). Thread-safe.
  size_t open_connections() const;
  // Bytes held in user-space queues right now (all faults). Thread-safe.
  uint64_t held_bytes() const;

  struct Impl;

 private:
  explicit TcpProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::agent::proxy
