#pragma once
// Internal to the proxy: one proxied connection, client ↔ dependency, as two Flows (upstream:
// client → dependency, downstream: the reverse) plus what concerns both: the upstream connect,
// the reset_peer and timeout deadlines, an HTTP abort's linger, epoll interest. It never
// destroys itself: Pump and OnEvent say whether the loop should keep it, close it or reset it.
// Loop-thread only.

#include <cstdint>
#include <memory>

#include "agent/proxy/internal/flow.h"
#include "agent/proxy/proxy_rules.h"
#include "agent/proxy/tcp_proxy.h"

namespace faultline::agent::proxy::internal {

// Which directions an event concerns (Connection::Pump's `flows`).
inline constexpr unsigned kUpFlow = 1;
inline constexpr unsigned kDownFlow = 2;
inline constexpr unsigned kBothFlows = kUpFlow | kDownFlow;

class Connection {
 public:
  enum class Outcome { kOpen, kClose, kReset };

  // Takes `client` (accepted) and `upstream` (connecting) sockets. Call Start next.
  Connection(LoopContext& loop, uint64_t id, std::shared_ptr<ProxyCounters> counters, int client,
             int upstream, Time now);
  // Closes whatever is still open (FIN; see Close for a reset).
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Draws nothing itself: applies `plan` (this connection's toxics) and the fault's HTTP rules,
  // counts them. false when a pipe could not be made (the caller resets the connection).
  bool Start(const v1::DependencyFault& spec, const ToxicPlan& plan);

  // An epoll event on `side` (0 client, 1 upstream).
  Outcome OnEvent(int side, uint32_t events);
  // Moves whatever can move now in `flows`, fires due deadlines. Idempotent.
  Outcome Pump(unsigned flows = kBothFlows);
  // Registers/updates the sockets' epoll interest to match the flows' needs.
  void UpdateInterest();
  // The earliest instant Pump has something to do on its own; kNever for none.
  Time NextDeadline() const;
  // When the connection counts as idle for `timeout`: that long after the last byte moved, or
  // after its last queued chunk is due (bytes a toxic holds back are not idleness).
  Time IdleDeadline(std::chrono::milliseconds timeout) const;
  // Whether an idle timeout applies now (not while connecting or lingering after an abort).
  bool MayIdle() const { return !connecting_ && !aborted_; }
  // Closes both sockets now, with a reset (SO_LINGER 0) or a FIN.
  void Close(bool reset);

  uint64_t id() const { return id_; }
  ProxyCounters& counters() { return *counters_; }

 private:
  Outcome DrainAborted(Time now);
  Outcome OnAbort(Time now);
  Flow& FlowReading(int side) { return side == 0 ? up_ : down_; }

  LoopContext& loop_;
  const uint64_t id_;
  std::shared_ptr<ProxyCounters> counters_;
  ConnectionIo io_;
  bool registered_[2] = {false, false};
  uint32_t events_[2] = {0, 0};
  bool connecting_ = true;
  Time connect_deadline_;
  Time reset_at_ = kNever;  // reset_peer
  Time close_at_ = kNever;  // timeout toxic
  bool aborted_ = false;    // HTTP abort sent: draining the client, then close
  Time linger_until_ = kNever;
  Flow up_;
  Flow down_;
};

}  // namespace faultline::agent::proxy::internal
