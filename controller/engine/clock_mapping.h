#pragma once
// ClockMapping: maps instants read on an agent's monotonic clock to the controller's, by
// round-trip offset estimation, with an error bound that contains the truth by construction.
//
// One exchange: the controller reads its clock at `sent`, asks the agent for its clock (GetInfo's
// monotonic_ns), and reads its clock at `received`. The agent read its clock at some controller
// instant in [sent, received], so the true offset (agent − controller) lies in
// [agent − received, agent − sent]: its midpoint is the estimate and half the round trip the
// error bound. Of several exchanges the one with the smallest round trip is kept (the tightest
// interval; the others' intervals contain the truth too, but wider). The bound assumes neither
// clock drifts noticeably during a run (monotonic clocks drift ppm: microseconds per minute).
//
// Pure; thread-safe.

#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/status.h"

namespace faultline::engine {

// One exchange, as the controller saw it.
struct ClockExchange {
  MonoTime sent{};      // controller clock before the request
  MonoTime received{};  // controller clock after the answer
  MonoTime agent{};     // the agent's clock in the answer
};

struct ClockMapping {
  Duration offset{};       // agent − controller (estimate)
  Duration error_bound{};  // |true offset − offset| <= error_bound
  Duration rtt{};          // round trip of the exchange kept

  // An agent instant on the controller's clock; the truth lies within ± error_bound.
  MonoTime ToController(MonoTime agent) const { return agent - offset; }
};

// The mapping from the exchange with the smallest round trip. INVALID_ARGUMENT when there is no
// exchange or one has received < sent. Pure.
Result<ClockMapping> EstimateClockMapping(const std::vector<ClockExchange>& exchanges);

}  // namespace faultline::engine
