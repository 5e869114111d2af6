#pragma once
// Internal to the proxy: one direction of a proxied connection (Flow), what the loop shares with
// every connection (LoopContext), and what a connection's two flows share (ConnectionIo).
// Loop-thread only.
//
// A flow reads from io.fd[src] and writes to io.fd[dst]. Untouched by toxics and HTTP faults it
// moves bytes with splice(2) through a pipe (zero-copy); otherwise through a user-space queue of
// timed chunks that its toxics (FlowToxic) shape and an optional HttpRequestGate inspects.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/proxy/internal/toxics.h"
#include "agent/proxy/proxy_rules.h"
#include "agent/proxy/tcp_proxy.h"

namespace faultline::agent::proxy::internal {

inline constexpr size_t kReadChunk = 64 * 1024;
// Work done per flow per wake-up before yielding to other connections (level-triggered epoll
// calls again when more is ready).
inline constexpr int kStepsPerWake = 16;
// Cost (ChunkCost) one direction may hold before it stops reading, on top of the global budget.
inline constexpr size_t kMaxQueuedPerFlow = 4 << 20;

// The event loop's state that connections and flows use.
struct LoopContext {
  explicit LoopContext(const ProxyOptions& o) : options(o) {}
  const ProxyOptions options;
  int epoll_fd = -1;
  // Cost of every queued chunk of every connection (ChunkCost); read by other threads.
  std::atomic<uint64_t> held{0};
  std::mt19937_64 rng{std::random_device{}()};
  char buffer[kReadChunk];
  double Uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
};

// A connection's sockets and what both its directions update.
struct ConnectionIo {
  int fd[2] = {-1, -1};   // client, upstream
  Time last_activity{};   // a byte moved either way (idle timeout)
  bool affected = false;  // counted in connections_affected already
};

void CloseFd(int& fd);

class Flow {
 public:
  enum class StepResult { kOk, kError, kAborted };

  // `upstream`: client → dependency (reads io.fd[0], writes io.fd[1]); else the reverse.
  Flow(LoopContext& loop, ConnectionIo& io, ProxyCounters& counters, bool upstream);
  // Closes the pipe and gives the queued chunks' cost back to the budget.
  ~Flow();
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  // Gives the flow its toxics (in the order listed) and HTTP gate, activated at `now`. A flow
  // with neither is spliced unless options.splice is off. false when its pipe cannot be made.
  bool Setup(std::vector<std::unique_ptr<FlowToxic>> toxics, std::unique_ptr<HttpRequestGate> gate,
             Time now);
  const ToxicEffects& effects() const { return effects_; }
  bool has_toxics() const { return !toxics_.empty(); }

  // Moves whatever can move now. kError on a socket error; kAborted when the HTTP gate aborted a
  // request (abort_response() is then to be sent to the client).
  StepResult Step(Time now);
  const std::string& abort_response() const { return abort_response_; }
  // After an abort: read and drop (the client's leftovers).
  void StartDiscarding() { effects_.discard = true; }

  // Whether the flow would read its source now (ignoring the connection's state).
  bool WantsRead() const;
  // The destination needs EPOLLOUT: blocked, or a spliced pipe left holding bytes.
  bool WantsWritable() const { return write_blocked_ || (!buffered_ && in_pipe_ > 0); }
  // The earliest instant the flow has something to do on its own (a chunk due, a held FIN).
  Time NextDeadline() const;
  // The latest release of a queued chunk it waits for (not blocked), else `since`.
  Time IdleFrom(Time since) const;

  bool src_eof() const { return src_eof_; }
  bool dst_shut() const { return dst_shut_; }
  bool Drained() const { return in_pipe_ == 0 && queue_.empty(); }
  bool Done() const { return src_eof_ && Drained() && dst_shut_; }
  bool LimitReached() const { return limit_hit_ && Drained(); }

 private:
  StepResult StepSpliced();
  StepResult StepBuffered(Time now);
  bool WriteDue(Time now);
  size_t ReadAllowance() const;
  void Ingest(std::string_view data, Time now);
  void Enqueue(std::string bytes, Time floor, Time now);
  std::atomic<uint64_t>& bytes_counter();

  LoopContext& loop_;
  ConnectionIo& io_;
  ProxyCounters& counters_;
  const bool upstream_;
  const int src_;
  const int dst_;
  std::vector<std::unique_ptr<FlowToxic>> toxics_;
  ToxicEffects effects_;
  std::unique_ptr<HttpRequestGate> gate_;
  HttpRequestGate::Counters gate_seen_;  // what was already added to the fault's counters
  std::string abort_response_;
  bool buffered_ = false;
  // Spliced path.
  int pipe_r_ = -1;
  int pipe_w_ = -1;
  size_t pipe_capacity_ = 0;
  size_t in_pipe_ = 0;
  // Buffered path.
  std::deque<Chunk> queue_;
  size_t queued_ = 0;  // ChunkCost of the queue
  Time last_release_{};
  uint64_t passed_ = 0;  // limit_data
  bool limit_hit_ = false;
  // Both paths.
  bool src_eof_ = false;
  Time eof_at_{};
  bool dst_shut_ = false;
  bool write_blocked_ = false;
};

}  // namespace faultline::agent::proxy::internal
