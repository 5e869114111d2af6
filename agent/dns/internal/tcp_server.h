#pragma once
// Internal to the DNS interceptor: DNS over TCP on the interceptor's event loop (no thread of its
// own). Each accepted connection is a small state machine over non-blocking sockets: read a frame
// (2-byte length, then the message, partial reads resumed), decide, then answer — at once, after
// an injected delay (a deadline in the loop, never a sleep), or with the upstream's reply fetched
// over a marked, non-blocking TCP socket — and write the framed answer (partial writes resumed),
// then read the next frame. At most options.max_tcp_connections connections (Add refuses more);
// an idle deadline for the next frame (tcp_idle_timeout_ms), an I/O deadline within one, the
// upstream timeout for a forwarded query. Loop thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/dns/internal/interceptor_core.h"

namespace faultline::agent::dns::internal {

class DnsTcpServer {
 public:
  // `on_closed` runs (loop thread) whenever a connection ends: its fds are free again.
  DnsTcpServer(InterceptorCore& core, std::function<void()> on_closed);
  // Closes every connection (see Close).
  ~DnsTcpServer();
  DnsTcpServer(const DnsTcpServer&) = delete;
  DnsTcpServer& operator=(const DnsTcpServer&) = delete;

  // Takes an accepted, non-blocking connection that arrived on a listener of `scope` and starts
  // serving it on core.loop. false at the connection cap: the fd is left to the caller (which
  // closes and counts it).
  bool Add(int fd, std::string scope);
  // An event for one of this server's tags (IsTcpTag).
  void OnEvent(uint64_t tag, uint32_t events);
  // Acts on the deadlines due at `now` (delays end, idle and I/O timeouts).
  void RunDue(SteadyClock::time_point now);
  // The next instant RunDue has something to do; time_point::max() for none.
  SteadyClock::time_point NextDeadline();
  // Closes every connection and its upstream socket. Idempotent. After the loop stopped, or on it.
  void Close();
  size_t connections() const { return conns_.size(); }

 private:
  struct Conn;
  // What a connection's state machine does next: close it, wait for an event or a deadline, or
  // take another step at once.
  enum class Step { kClose, kWait, kAgain };
  Step Advance(Conn& c);
  Step StepOnce(Conn& c);
  Step ReadFrame(Conn& c);
  Step Decided(Conn& c, Decision d);
  Step StartUpstream(Conn& c);
  Step AdvanceUpstream(Conn& c);
  Step Write(Conn& c);
  void EnterRead(Conn& c);
  std::chrono::milliseconds IoTimeout() const;
  void FinishUpstream(Conn& c);
  void Interest(Conn& c, uint32_t client, uint32_t upstream);
  void Schedule(Conn& c);
  void Kill(uint64_t id);
  void Settle(uint64_t id, bool keep);

  InterceptorCore& core_;
  std::function<void()> on_closed_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  // Deadlines by connection; an entry whose time is no longer its connection's is stale.
  using Entry = std::pair<SteadyClock::time_point, uint64_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> deadlines_;
};

}  // namespace faultline::agent::dns::internal
