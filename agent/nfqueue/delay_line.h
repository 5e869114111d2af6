#pragma once
// DelayLine: a userspace delay line on one NFQUEUE queue (libnetfilter_queue). Every packet the
// kernel queues is held and its verdict (ACCEPT) issued once its delay has passed; one thread per
// line waits on the queue socket and a timerfd armed for the earliest release.
//
// Safety: the queueing rule carries --queue-bypass, so while no line listens packets pass
// undelayed; the kernel queue is fail-open (a full queue accepts instead of dropping); packets
// beyond the held-bytes bound are released at once and counted. Stop releases every held packet.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace faultline::agent::nfqueue {

struct DelayLineSettings {
  uint16_t queue_num = 0;
  std::chrono::microseconds delay{0};
  std::chrono::microseconds jitter{0};
  bool normal_distribution = false;  // false: uniform in [delay - jitter, delay + jitter]
  double correlation = 0.0;          // 0..1: weight of the previous packet's jitter
  bool reorder = false;              // false: release in arrival order
  uint64_t max_held_bytes = 64ull << 20;
  uint32_t max_held_packets = 65536;  // also the kernel queue's length
};

// Counters of one line; all monotonic over its life.
struct DelayLineStats {
  uint64_t packets_delayed = 0;  // held and released after their delay
  uint64_t bytes_delayed = 0;
  uint64_t packets_passed_over_bound = 0;  // released at once: held-bytes/packets bound reached
  uint64_t added_delay_sum_us = 0;  // over packets_delayed: release instant - arrival instant
  uint64_t added_delay_max_us = 0;
  uint64_t held_packets = 0;         // now
  uint64_t held_bytes = 0;           // now
  uint64_t kernel_dropped = 0;       // the kernel queue's queue_dropped (full, no fail-open)
  uint64_t kernel_user_dropped = 0;  // the kernel's user_dropped (netlink socket overrun)
  uint64_t receive_overruns = 0;     // ENOBUFS seen by the line (packets lost to fail-open)
};

// Draws per-packet delays: delay ± jitter per the distribution, with netem-style correlation.
// Deterministic for a given seed; not thread-safe.
class DelaySampler {
 public:
  DelaySampler(const DelayLineSettings& settings, uint64_t seed);
  std::chrono::microseconds Next();

 private:
  const DelayLineSettings settings_;
  uint64_t state_;
  double last_ = 0.0;  // previous jitter draw in [-1, 1] (uniform) or standard normal units

  double Uniform01();
};

class DelayLine {
 public:
  ~DelayLine();
  DelayLine(const DelayLine&) = delete;
  DelayLine& operator=(const DelayLine&) = delete;

  // Binds queue settings.queue_num and starts the thread. Needs CAP_NET_ADMIN. UNAVAILABLE when
  // the queue cannot be bound (e.g. another process holds it), INVALID_ARGUMENT for bad settings.
  static Result<std::unique_ptr<DelayLine>> Start(const DelayLineSettings& settings);

  // Releases every held packet (ACCEPT), unbinds the queue, joins the thread. Idempotent.
  void Stop();

  // A snapshot of the counters (kernel counters read from /proc/net/netfilter/nfnetlink_queue).
  // Thread-safe; valid after Stop (final values).
  DelayLineStats Stats() const;

  uint16_t queue_num() const { return settings_.queue_num; }

 private:
  struct Impl;
  explicit DelayLine(const DelayLineSettings& settings);
  const DelayLineSettings settings_;
  std::unique_ptr<Impl> impl_;
};

// Parses /proc/net/netfilter/nfnetlink_queue text: for queue `queue_num`, (queue_dropped,
// user_dropped). NOT_FOUND when the queue is not listed.
Result<std::pair<uint64_t, uint64_t>> ParseQueueProcStats(const std::string& text,
                                                          uint16_t queue_num);

}  // namespace faultline::agent::nfqueue
