#pragma once
// The agent-side probe on the wire (v1::ProbeRequest): built by the controller from a probe spec,
// validated field by field and turned back into a spec by the agent. Both sides use these two
// functions, so what the controller may ask is exactly what the agent accepts.

#include <string>
#include <vector>

#include "common/duration.h"
#include "common/probes/probe_spec.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::probes {

// Bounds the agent enforces on every Probe request.
inline constexpr Duration kMinProbeInterval = std::chrono::milliseconds(50);
inline constexpr Duration kMaxProbeInterval = std::chrono::seconds(60);
inline constexpr Duration kMinProbeTimeout = std::chrono::milliseconds(10);
inline constexpr Duration kMaxProbeTimeout = std::chrono::seconds(60);
inline constexpr Duration kMaxProbeDuration = std::chrono::hours(24);
inline constexpr size_t kMaxProbeUrlBytes = 2048;
inline constexpr size_t kMaxProbeRegexBytes = 1024;
inline constexpr size_t kMaxProbeArgs = 64;
inline constexpr size_t kMaxProbeArgBytes = 4096;
inline constexpr size_t kMaxProbeDetailBytes = 256;

// The request asking an agent to run `spec` every spec.interval for `duration` (0: until
// cancelled) for run `run_id`. INVALID_ARGUMENT when the spec cannot run on an agent: a
// prometheus probe (the controller runs those), a grpc_health probe with TLS files (an agent
// reads no file a caller names). The agent still validates the result. Pure.
Result<v1::ProbeRequest> MakeProbeRequest(const ProbeSpec& spec, const std::string& run_id,
                                          Duration duration);

// What an agent does with a Probe request: every field checked (interval 50ms..60s, timeout
// 10ms..60s and at most 10 intervals, duration at most 24h, a name [A-Za-z0-9_.-]{1,64}, an
// http(s) URL of at most 2048 bytes with a status 100..599, host names by DNS syntax or IP
// addresses, ports 1..65535, a DNS server that is an IP[:port], regexes RE2 can compile of at
// most 1024 bytes, argv of at most 64 entries of 4096 bytes). A command probe must name as argv[0]
// exactly one of `allowed_commands` (absolute paths, the agent's --allow-probe-command; empty:
// none), else PERMISSION_DENIED naming the program and the flag. A `workload` selector follows
// faultspec::ValidateWorkloadSelector (fields "workload.*"); the caller resolves it.
// INVALID_ARGUMENT naming the field otherwise. On success the spec and *duration (0: until
// cancelled). Pure.
Result<ProbeSpec> ProbeSpecFromRequest(const v1::ProbeRequest& request,
                                       const std::vector<std::string>& allowed_commands,
                                       Duration* duration);

}  // namespace faultline::probes
