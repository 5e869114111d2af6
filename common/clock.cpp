#include "common/clock.h"

#include <time.h>

namespace faultline {

MonoTime SystemClock::Now() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return MonoTime(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
}

int64_t SystemClock::WallUnixMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

}  // namespace faultline
