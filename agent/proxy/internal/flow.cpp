#include "agent/proxy/internal/flow.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace faultline::agent::proxy::internal {
namespace {

constexpr size_t kSpliceChunk = 1 << 20;

}  // namespace

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

Flow::Flow(LoopContext& loop, ConnectionIo& io, ProxyCounters& counters, bool upstream)
    : loop_(loop),
      io_(io),
      counters_(counters),
      upstream_(upstream),
      src_(upstream ? 0 : 1),
      dst_(upstream ? 1 : 0) {}

Flow::~Flow() {
  CloseFd(pipe_r_);
  CloseFd(pipe_w_);
  loop_.held -= queued_;
}

std::atomic<uint64_t>& Flow::bytes_counter() {
  return upstream_ ? counters_.bytes_upstream : counters_.bytes_downstream;
}

bool Flow::Setup(std::vector<std::unique_ptr<FlowToxic>> toxics,
                 std::unique_ptr<HttpRequestGate> gate, Time now) {
  toxics_ = std::move(toxics);
  gate_ = std::move(gate);
  for (const auto& t : toxics_) t->Activate(now, effects_);
  buffered_ = !toxics_.empty() || gate_ != nullptr || !loop_.options.splice;
  if (buffered_) return true;
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
    spdlog::warn("proxy: pipe2: {}", std::strerror(errno));
    return false;
  }
  if (loop_.options.pipe_size > 0) ::fcntl(p[1], F_SETPIPE_SZ, loop_.options.pipe_size);
  const int capacity = ::fcntl(p[1], F_GETPIPE_SZ);
  pipe_capacity_ = capacity > 0 ? static_cast<size_t>(capacity) : 0;
  pipe_r_ = p[0];
  pipe_w_ = p[1];
  return true;
}

bool Flow::WantsRead() const {
  if (src_eof_ || limit_hit_) return false;
  if (!buffered_) return in_pipe_ == 0;
  return queued_ < kMaxQueuedPerFlow && loop_.held.load() < loop_.options.max_held_bytes;
}

Time Flow::NextDeadline() const {
  Time t = kNever;
  if (!queue_.empty() && !write_blocked_) t = queue_.front().release;
  if (src_eof_ && Drained() && !dst_shut_ && effects_.slow_close_ms > 0) {
    t = std::min(t, eof_at_ + std::chrono::milliseconds(effects_.slow_close_ms));
  }
  return t;
}

Time Flow::IdleFrom(Time since) const {
  if (!queue_.empty() && !write_blocked_) return std::max(since, queue_.back().release);
  return since;
}

Flow::StepResult Flow::Step(Time now) { return buffered_ ? StepBuffered(now) : StepSpliced(); }

Flow::StepResult Flow::StepSpliced() {
  auto& bytes = bytes_counter();
  bool source_drained = false;
  for (int i = 0; i < kStepsPerWake; ++i) {
    if (in_pipe_ > 0) {
      ssize_t n = ::splice(pipe_r_, nullptr, io_.fd[dst_], nullptr, in_pipe_,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        io_.last_activity = SteadyClock::now();
        in_pipe_ -= static_cast<size_t>(n);
        bytes += static_cast<uint64_t>(n);
        counters_.bytes_spliced += static_cast<uint64_t>(n);
        write_blocked_ = false;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        write_blocked_ = true;
        break;
      }
      return StepResult::kError;
    }
    if (src_eof_ || source_drained) break;
    ssize_t n = ::splice(io_.fd[src_], nullptr, pipe_w_, nullptr, kSpliceChunk,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      io_.last_activity = SteadyClock::now();
      in_pipe_ += static_cast<size_t>(n);
      // Less than a pipeful: the socket had no more (as for a short read, see StepBuffered).
      source_drained = static_cast<size_t>(n) < pipe_capacity_;
      continue;
    }
    if (n == 0) {
      src_eof_ = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return StepResult::kError;
  }
  if (src_eof_ && in_pipe_ == 0 && !dst_shut_) {
    ::shutdown(io_.fd[dst_], SHUT_WR);
    dst_shut_ = true;
  }
  return StepResult::kOk;
}

bool Flow::WriteDue(Time now) {
  auto& bytes = bytes_counter();
  while (!queue_.empty() && queue_.front().release <= now) {
    Chunk& chunk = queue_.front();
    ssize_t n = ::send(io_.fd[dst_], chunk.data.data() + chunk.off, chunk.data.size() - chunk.off,
                       MSG_NOSIGNAL);
    if (n > 0) {
      io_.last_activity = now;
      chunk.off += static_cast<size_t>(n);
      bytes += static_cast<uint64_t>(n);
      write_blocked_ = false;
      if (chunk.off == chunk.data.size()) {
        // Its memory is freed now, not byte by byte as it is sent.
        queued_ -= chunk.cost;
        loop_.held -= chunk.cost;
        queue_.pop_front();
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      write_blocked_ = true;
      return true;
    }
    return false;
  }
  return true;
}

// How many bytes the flow may read now so that queueing them, cut into its toxics' smallest
// pieces, stays within the held budget (at least 1: a read overshoots by one chunk at most).
size_t Flow::ReadAllowance() const {
  const uint64_t used = loop_.held.load();
  const uint64_t max = loop_.options.max_held_bytes;
  const uint64_t left = used < max ? max - used : 0;
  const uint64_t flow_left = kMaxQueuedPerFlow > queued_ ? kMaxQueuedPerFlow - queued_ : 0;
  uint64_t budget = std::min(left, flow_left);
  // n bytes become at most n / min_piece + cutters + 1 chunks, each costing kChunkOverhead plus
  // its bytes, +1 and a heap block's overhead.
  const uint64_t per_chunk = kChunkOverhead + 1 + kMallocOverhead;
  const uint64_t fixed = (effects_.cutters + 1) * per_chunk;
  budget = budget > fixed ? budget - fixed : 0;
  uint64_t n = budget;
  if (effects_.min_piece != SIZE_MAX)
    n = budget * effects_.min_piece / (effects_.min_piece + per_chunk);
  return static_cast<size_t>(std::clamp<uint64_t>(n, 1, kReadChunk));
}

Flow::StepResult Flow::StepBuffered(Time now) {
  if (!WriteDue(now)) return StepResult::kError;
  for (int i = 0; i < kStepsPerWake && WantsRead(); ++i) {
    const size_t allowance = ReadAllowance();
    ssize_t n = ::read(io_.fd[src_], loop_.buffer, allowance);
    if (n > 0) {
      io_.last_activity = now;
      Ingest(std::string_view(loop_.buffer, static_cast<size_t>(n)), now);
      if (!abort_response_.empty()) return StepResult::kAborted;
      // A short read emptied the socket: no second read just to see EAGAIN (level-triggered
      // epoll reports whatever arrives later).
      if (static_cast<size_t>(n) < allowance) break;
      continue;
    }
    if (n == 0) {
      src_eof_ = true;
      eof_at_ = now;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return StepResult::kError;
  }
  if (!src_eof_ && !limit_hit_ && queued_ < kMaxQueuedPerFlow &&
      loop_.held.load() >= loop_.options.max_held_bytes) {
    ++counters_.held_budget_stalls;
  }
  if (!WriteDue(now)) return StepResult::kError;
  if (src_eof_ && Drained() && !dst_shut_) {
    if (effects_.slow_close_ms == 0 ||
        now >= eof_at_ + std::chrono::milliseconds(effects_.slow_close_ms)) {
      ::shutdown(io_.fd[dst_], SHUT_WR);
      dst_shut_ = true;
    }
  }
  return StepResult::kOk;
}

void Flow::Ingest(std::string_view data, Time now) {
  if (effects_.discard) {
    counters_.bytes_discarded += data.size();
    return;
  }
  if (!gate_) {
    Enqueue(std::string(data), now, now);
    return;
  }
  HttpRequestGate::Output out = gate_->Feed(data);
  const auto& g = gate_->counters();
  counters_.requests_seen += g.requests_seen - gate_seen_.requests_seen;
  counters_.requests_matched += g.requests_matched - gate_seen_.requests_matched;
  counters_.requests_aborted += g.requests_aborted - gate_seen_.requests_aborted;
  counters_.requests_delayed += g.requests_delayed - gate_seen_.requests_delayed;
  counters_.requests_uninspected += g.uninspected - gate_seen_.uninspected;
  if (!io_.affected && g.requests_aborted + g.requests_delayed > 0) {
    io_.affected = true;
    ++counters_.connections_affected;
  }
  gate_seen_ = g;
  for (auto& segment : out.forward) Enqueue(std::move(segment.bytes), now + segment.delay, now);
  if (out.abort) {
    // The dependency never sees the request; the connection sends the response and closes.
    abort_response_ = std::move(out.response);
    effects_.discard = true;
  }
}

// Applies the direction's toxics to `bytes` (arriving now, not to be released before `floor`)
// and queues the resulting timed chunks.
void Flow::Enqueue(std::string bytes, Time floor, Time now) {
  if (bytes.empty()) return;
  if (effects_.limit > 0) {
    uint64_t left = effects_.limit - std::min(effects_.limit, passed_);
    if (bytes.size() >= left) {
      bytes.resize(static_cast<size_t>(left));
      limit_hit_ = true;
    }
    passed_ += bytes.size();
    if (bytes.empty()) return;
  }
  std::vector<Chunk> pieces;
  pieces.push_back({std::move(bytes), 0, floor});
  for (auto& t : toxics_) t->Shape(pieces, loop_.rng);
  for (Chunk& p : pieces) {
    // Delivery stays in order whatever the jitter.
    p.release = std::max(p.release, last_release_);
    last_release_ = p.release;
    if (p.release > now) counters_.bytes_delayed += p.data.size();
    p.cost = ChunkCost(p);
    queued_ += p.cost;
    loop_.held += p.cost;
    queue_.push_back(std::move(p));
  }
}

}  // namespace faultline::agent::proxy::internal
