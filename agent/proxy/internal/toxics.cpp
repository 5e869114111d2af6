#include "agent/proxy/internal/toxics.h"

#include <algorithm>

namespace faultline::agent::proxy::internal {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Toxic = v1::DependencyFault::Toxic;

constexpr size_t kInlineString = 15;  // libstdc++'s small-string capacity

class LatencyToxic final : public FlowToxic {
 public:
  explicit LatencyToxic(const Toxic::Latency& s) : s_(s) {}
  void Shape(std::vector<Chunk>& pieces, std::mt19937_64& rng) override {
    int64_t us = s_.latency_us();
    if (s_.jitter_us() > 0) {
      us += std::uniform_int_distribution<int64_t>(-int64_t{s_.jitter_us()}, s_.jitter_us())(rng);
    }
    for (Chunk& p : pieces) p.release += microseconds(std::max<int64_t>(0, us));
  }

 private:
  const Toxic::Latency s_;
};

class SlicerToxic final : public FlowToxic {
 public:
  explicit SlicerToxic(const Toxic::Slicer& s) : s_(s) {}
  void Activate(Time, ToxicEffects& e) const override {
    const int64_t smallest = int64_t{s_.average_size()} - int64_t{s_.size_variation()};
    e.min_piece = std::min(e.min_piece, static_cast<size_t>(std::max<int64_t>(1, smallest)));
    ++e.cutters;
  }
  void Shape(std::vector<Chunk>& pieces, std::mt19937_64& rng) override {
    std::vector<Chunk> sliced;
    for (Chunk& p : pieces) {
      Time at = p.release;
      size_t off = 0;
      while (off < p.data.size()) {
        int64_t size = s_.average_size();
        if (s_.size_variation() > 0) {
          size += std::uniform_int_distribution<int64_t>(-int64_t{s_.size_variation()},
                                                         s_.size_variation())(rng);
        }
        size_t take =
            std::min(p.data.size() - off, static_cast<size_t>(std::max<int64_t>(1, size)));
        sliced.push_back({p.data.substr(off, take), 0, at});
        off += take;
        at += microseconds(s_.delay_us());
      }
    }
    pieces = std::move(sliced);
  }

 private:
  const Toxic::Slicer s_;
};

class BandwidthToxic final : public FlowToxic {
 public:
  explicit BandwidthToxic(const Toxic::Bandwidth& s)
      : rate_(std::max<uint64_t>(1, s.rate_bytes_per_second())),
        // Pieces of at most 1/50 s of traffic, so the flow is smooth rather than bursty.
        max_piece_(static_cast<size_t>(std::max<uint64_t>(1, rate_ / 50))) {}
  void Activate(Time, ToxicEffects& e) const override {
    e.min_piece = std::min(e.min_piece, max_piece_);
    ++e.cutters;
  }
  void Shape(std::vector<Chunk>& pieces, std::mt19937_64&) override {
    std::vector<Chunk> paced;
    for (Chunk& p : pieces) {
      for (size_t off = 0; off < p.data.size(); off += max_piece_) {
        size_t take = std::min(max_piece_, p.data.size() - off);
        Time start = std::max(p.release, free_at_);
        free_at_ = start + microseconds(static_cast<int64_t>(take * 1'000'000 / rate_));
        paced.push_back({p.data.substr(off, take), 0, free_at_});
      }
    }
    pieces = std::move(paced);
  }

 private:
  const uint64_t rate_;
  const size_t max_piece_;
  Time free_at_{};  // when the link is free for the next piece
};

class ResetPeerToxic final : public FlowToxic {
 public:
  explicit ResetPeerToxic(const Toxic::ResetPeer& s) : s_(s) {}
  void Activate(Time now, ToxicEffects& e) const override {
    e.reset_at = std::min(e.reset_at, now + milliseconds(s_.timeout_ms()));
  }

 private:
  const Toxic::ResetPeer s_;
};

class TimeoutToxic final : public FlowToxic {
 public:
  explicit TimeoutToxic(const Toxic::Timeout& s) : s_(s) {}
  void Activate(Time now, ToxicEffects& e) const override {
    e.discard = true;
    if (s_.timeout_ms() > 0) e.close_at = std::min(e.close_at, now + milliseconds(s_.timeout_ms()));
  }

 private:
  const Toxic::Timeout s_;
};

class SlowCloseToxic final : public FlowToxic {
 public:
  explicit SlowCloseToxic(const Toxic::SlowClose& s) : s_(s) {}
  void Activate(Time, ToxicEffects& e) const override {
    e.slow_close_ms = std::max(e.slow_close_ms, s_.delay_ms());
  }

 private:
  const Toxic::SlowClose s_;
};

class LimitDataToxic final : public FlowToxic {
 public:
  explicit LimitDataToxic(const Toxic::LimitData& s) : s_(s) {}
  void Activate(Time, ToxicEffects& e) const override {
    e.limit = e.limit == 0 ? s_.bytes() : std::min<uint64_t>(e.limit, s_.bytes());
  }

 private:
  const Toxic::LimitData s_;
};

}  // namespace

size_t ChunkCost(const Chunk& chunk) {
  const size_t cap = chunk.data.capacity();
  return kChunkOverhead + (cap > kInlineString ? cap + 1 + kMallocOverhead : 0);
}

void FlowToxic::Activate(Time, ToxicEffects&) const {}
void FlowToxic::Shape(std::vector<Chunk>&, std::mt19937_64&) {}

std::unique_ptr<FlowToxic> MakeFlowToxic(const Toxic& toxic) {
  switch (toxic.kind_case()) {
    case Toxic::kLatency:
      return std::make_unique<LatencyToxic>(toxic.latency());
    case Toxic::kSlicer:
      return std::make_unique<SlicerToxic>(toxic.slicer());
    case Toxic::kBandwidth:
      return std::make_unique<BandwidthToxic>(toxic.bandwidth());
    case Toxic::kResetPeer:
      return std::make_unique<ResetPeerToxic>(toxic.reset_peer());
    case Toxic::kTimeout:
      return std::make_unique<TimeoutToxic>(toxic.timeout());
    case Toxic::kSlowClose:
      return std::make_unique<SlowCloseToxic>(toxic.slow_close());
    case Toxic::kLimitData:
      return std::make_unique<LimitDataToxic>(toxic.limit_data());
    default:
      return std::make_unique<FlowToxic>();
  }
}

}  // namespace faultline::agent::proxy::internal
