#pragma once
// The dependency fault kind (v1::DependencyFault, the agent's fault proxy): every field's rule
// and limit, in one place for the agent and the experiment parser.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/faultspec/field_problems.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

inline constexpr int kMaxToxics = 16;
inline constexpr uint32_t kMaxToxicDelayUs = 60'000'000;   // latency toxic, 60 s
inline constexpr uint32_t kMaxDependencyDelayMs = 60'000;  // reset_peer, timeout, slow_close, http
inline constexpr uint32_t kMaxSlicerSize = 1u << 20;
inline constexpr uint32_t kMaxSlicerDelayUs = 1'000'000;
inline constexpr int kMaxHttpAborts = 8;
inline constexpr size_t kMaxHttpAbortBody = 4096;
inline constexpr int kMaxHttpMethods = 16;
inline constexpr size_t kMaxHttpMethodLength = 32;
inline constexpr size_t kMaxHttpPathPrefix = 1024;

// Adds a problem for every field of `fault` that breaks a rule (paths start with `path`,
// normally "dependency"): match.remote_ports 1-64 (required), no direction, protocol any or
// tcp, no local_ports, the selector's lists (ValidateSelectorLists); at most 16 toxics, each
// with exactly one kind and in-range parameters and toxicity in (0, 1]; http: at most 8 aborts
// (status 400-599, percent in (0, 100], body <= 4096 bytes, percents summing to <= 100), delay
// at most 60 s with both delay_ms and delay_percent (0-100), at most 16 upper-case methods,
// path_prefix empty or '/...' without spaces or control characters (<= 1024 bytes), and at
// least one abort or delay. An empty fault (no toxic, no http) is a valid pass-through. Pure.
void ValidateDependencyFault(const v1::DependencyFault& fault, const std::string& path,
                             FieldProblems* problems);

}  // namespace faultline::faultspec
