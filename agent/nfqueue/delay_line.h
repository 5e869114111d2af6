#pragma once
// DelayLine: a userspace delay line on one NFQUEUE queue (libnetfilter_queue). Every packet the
// kernel queues is held and released once its delay has passed; one thread per line waits on the
// queue socket and a timerfd armed (absolute CLOCK_MONOTONIC) for the earliest release.
//
// Two ways of holding a packet:
//  - hold (ingress, and delay 0): the kernel keeps the packet; the line issues ACCEPT (clearing
//    `clear_mark` from its mark) when it is due. Without loss the queue takes GSO/GRO
//    super-packets whole (NFQA_CFG_F_GSO), so one netfilter packet is one queued packet; with
//    loss the kernel segments them, so each wire packet is its own draw.
//  - reinject (egress with a delay): the line copies the whole packet, drops the original at once
//    and sends the copy through a raw socket marked `bypass_mark` when it is due. Why: a packet
//    held in the kernel at OUTPUT still belongs to its socket (sk_wmem_alloc), and TCP Small
//    Queues lets a socket have only ~1 ms of pacing rate (at least two packets) below the TCP
//    layer, so a held bulk flow stalls at a few packets per delay (50 ms: ~1 Mbit/s). Dropping
//    the original frees it (the sender saw the queueing as a successful transmit); the copy is
//    owned by the line's socket. The kernel segments GSO packets before queueing them here, so
//    copies fit the MTU and carry computed checksums.
// Optionally a packet is dropped instead (loss with correlation, see LossModel).
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
  // Loss: each packet is dropped with probability loss_percent/100; loss_correlation (0..1) is the
  // lag-1 correlation of successive drop decisions (LossModel).
  double loss_percent = 0.0;
  double loss_correlation = 0.0;
  // Reinject mode (see above); needs bypass_mark != 0, which the rules must let pass unqueued.
  bool reinject = false;
  uint32_t bypass_mark = 0;
  // Hold mode: bits cleared from a released packet's mark (so later hooks can tell released
  // packets from ones the kernel let pass around the line).
  uint32_t clear_mark = 0;
  // SCHED_FIFO priority of the line's thread (1..99); 0 keeps the default policy. Falls back to
  // the default (logged in Stats().realtime == false) when not permitted.
  int realtime_priority = 0;
  uint64_t max_held_bytes = 64ull << 20;
  uint32_t max_held_packets = 65536;  // also the kernel queue's length
};

// Counters of one line; all monotonic over its life except held_* and timer_compensation_ns.
// Accounting: packets_received == packets_delayed + packets_dropped + packets_passed_over_bound
//   + reinject_errors + held_packets (exact at every snapshot).
struct DelayLineStats {
  uint64_t packets_received = 0;  // queued to the line by the kernel
  uint64_t bytes_received = 0;
  uint64_t packets_delayed = 0;  // held and released after their delay
  uint64_t bytes_delayed = 0;
  uint64_t packets_dropped = 0;  // dropped by the loss model
  uint64_t bytes_dropped = 0;
  uint64_t packets_passed_over_bound = 0;  // released at once: held-bytes/packets bound reached
  uint64_t reinject_errors = 0;            // copies the raw socket refused: lost
  uint64_t added_delay_sum_us = 0;  // over packets_delayed: release instant - arrival instant
  uint64_t added_delay_max_us = 0;
  uint64_t held_packets = 0;           // now
  uint64_t held_bytes = 0;             // now
  uint64_t kernel_dropped = 0;         // the kernel queue's queue_dropped (full, no fail-open)
  uint64_t kernel_user_dropped = 0;    // the kernel's user_dropped (netlink socket overrun)
  uint64_t receive_overruns = 0;       // ENOBUFS seen by the line (packets lost to fail-open)
  uint64_t timer_compensation_ns = 0;  // current early arming of the timer (measured wake-up lag)
  bool realtime = false;               // the thread runs SCHED_FIFO
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

// Correlated loss as a two-state Markov chain on the previous decision (a simple Gilbert model):
// P(drop | previous dropped) = c + (1 - c) * p and P(drop | previous kept) = p * (1 - a) / (1 - p)
// with a the first probability, so the long-run drop rate is exactly p and the lag-1
// correlation of decisions is exactly c (c = 0: independent; mean burst length 1 / (1 - a)).
// nftables cannot keep that per-packet state, so correlated loss runs in the delay line.
// Deterministic for a given seed; not thread-safe.
class LossModel {
 public:
  // percent 0..100, correlation 0..1.
  LossModel(double percent, double correlation, uint64_t seed);
  bool Drop();

 private:
  double p_after_drop_;
  double p_after_keep_;
  bool last_ = false;
  uint64_t state_;
};

class DelayLine {
 public:
  ~DelayLine();
  DelayLine(const DelayLine&) = delete;
  DelayLine& operator=(const DelayLine&) = delete;

  // Binds queue settings.queue_num and starts the thread. Needs CAP_NET_ADMIN (and CAP_NET_RAW
  // for reinject). UNAVAILABLE when the queue cannot be bound (e.g. another process holds it),
  // INVALID_ARGUMENT for bad settings.
  static Result<std::unique_ptr<DelayLine>> Start(const DelayLineSettings& settings);

  // Releases every held packet, unbinds the queue, joins the thread. Idempotent.
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
