#include "controller/engine/clock_mapping.h"

namespace faultline::engine {

Result<ClockMapping> EstimateClockMapping(const std::vector<ClockExchange>& exchanges) {
  if (exchanges.empty()) return InvalidArgument("no clock exchange with the agent");
  const ClockExchange* best = nullptr;
  for (const ClockExchange& e : exchanges) {
    if (e.received < e.sent) return InvalidArgument("a clock exchange answered before it was sent");
    if (best == nullptr || e.received - e.sent < best->received - best->sent) best = &e;
  }
  ClockMapping m;
  m.rtt = best->received - best->sent;
  // Midpoint of [agent − received, agent − sent]; the bound rounds up so that it covers both
  // ends exactly when the round trip is an odd number of nanoseconds.
  m.offset = best->agent - best->sent - m.rtt / 2;
  m.error_bound = m.rtt - m.rtt / 2;
  return m;
}

}  // namespace faultline::engine
