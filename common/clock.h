#pragma once
// The clock seam: production code asks a Clock, tests substitute a FakeClock.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace faultline {

// Monotonic nanoseconds (CLOCK_MONOTONIC; shared by every network namespace on one machine,
// so instants logged by sandbox services compare directly with the CLI's samples).
using MonoTime = std::chrono::nanoseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;        // monotonic
  virtual int64_t WallUnixMs() const = 0;  // wall clock, for humans only
};

class SystemClock final : public Clock {
 public:
  MonoTime Now() const override;
  int64_t WallUnixMs() const override;
  static SystemClock& Instance();
};

// Manually advanced clock for tests. Thread-safe.
class FakeClock final : public Clock {
 public:
  MonoTime Now() const override { return MonoTime(now_.load()); }
  int64_t WallUnixMs() const override { return 1'700'000'000'000 + now_.load() / 1'000'000; }
  void Advance(std::chrono::nanoseconds d) { now_ += d.count(); }
  void Set(MonoTime t) { now_ = t.count(); }

 private:
  std::atomic<int64_t> now_{0};
};

}  // namespace faultline
