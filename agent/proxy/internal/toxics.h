#pragma once
// Internal to the proxy (not part of its interface): the toxics as small strategy classes, one
// object per toxic per direction per connection (userver's chaos TCP gate has one interceptor
// per direction; Envoy's fault filter splits settings from the per-activation handle: here the
// validated proto is the settings and a FlowToxic is the activation).
//
// A toxic acts in one or both of two ways:
//   - at the connection's start, on its whole (Activate): reset_peer and timeout set deadlines,
//     timeout discards, slow_close delays the FIN, limit_data caps the bytes, cutters record how
//     small they cut;
//   - on the bytes that arrive (Shape): latency delays, slicer cuts and spaces, bandwidth paces.
// Loop-thread only, like everything under internal/.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "faultline/v1/agent.pb.h"

namespace faultline::agent::proxy::internal {

using SteadyClock = std::chrono::steady_clock;
using Time = SteadyClock::time_point;
inline constexpr Time kNever = Time::max();

// Bytes waiting in a buffered direction until `release`.
struct Chunk {
  std::string data;
  size_t off = 0;  // already sent
  Time release;
  size_t cost = 0;  // ChunkCost, charged to the held budget while queued
};

// Bytes the allocator spends per heap block beyond the bytes asked for (header, rounding), and
// what one queued chunk costs besides its heap block (its slot in the deque and the deque's map).
inline constexpr size_t kMallocOverhead = 16;
inline constexpr size_t kChunkOverhead = sizeof(Chunk) + 16;

// Memory one queued chunk really holds: its queue slot plus its heap block if any (libstdc++
// keeps up to 15 bytes inline). A 1-byte slice costs ~65 bytes, not 1.
size_t ChunkCost(const Chunk& chunk);

// What a direction's toxics do to the connection as a whole, folded at its start.
struct ToxicEffects {
  Time reset_at = kNever;       // reset_peer: reset both peers then
  Time close_at = kNever;       // timeout: close both peers then
  bool discard = false;         // timeout: nothing passes
  uint64_t limit = 0;           // limit_data: bytes that pass, then close; 0 = none
  uint32_t slow_close_ms = 0;   // slow_close: the FIN is held this long
  size_t min_piece = SIZE_MAX;  // the smallest piece a toxic cuts bytes into
  size_t cutters = 0;           // toxics that cut (each may leave one short remainder per read)
};

// One toxic acting on one direction of one connection.
class FlowToxic {
 public:
  virtual ~FlowToxic() = default;
  // Folds this toxic's connection-wide effect into `effects`. `now`: the connection's start.
  virtual void Activate(Time now, ToxicEffects& effects) const;
  // Reshapes, in place and in order, the timed pieces that bytes arriving now become.
  virtual void Shape(std::vector<Chunk>& pieces, std::mt19937_64& rng);
};

// The strategy for a validated toxic. Never null (an unknown kind acts as none).
std::unique_ptr<FlowToxic> MakeFlowToxic(const v1::DependencyFault::Toxic& toxic);

}  // namespace faultline::agent::proxy::internal
