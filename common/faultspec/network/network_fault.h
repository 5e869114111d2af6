#pragma once
// The network fault kind (v1::NetworkFault): every field's rule and limit, in one place for the
// agent and the experiment parser.

#include <cstdint>
#include <string>

#include "common/faultspec/field_problems.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

inline constexpr uint32_t kMaxNetworkDelayUs = 60'000'000;       // latency.delay_us, 60 s
inline constexpr uint64_t kMinNetworkRate = 1000;                // bandwidth, bytes/s
inline constexpr uint64_t kMaxNetworkRate = uint64_t{1} << 40;   // bandwidth, bytes/s
inline constexpr uint32_t kMinNetworkBurst = 1500;               // bandwidth.burst_bytes
inline constexpr uint32_t kMaxNetworkBurst = uint32_t{1} << 30;  // 1 GiB

struct NetworkValidationOptions {
  // The experiment parser validates a partition whose peers are other target groups
  // (`partition.to`) before the engine adds those groups' addresses to match.cidrs; with this
  // set a partition without cidrs or hosts is not an error. The agent never sets it.
  bool partition_peers_added_later = false;
};

// Adds a problem for every field of `fault` that breaks a rule (paths start with `path`,
// normally "network"): exactly one kind; latency delay 1 us to 60 s, jitter <= delay,
// correlation 0-100, known distribution; loss 0.01-100 %, correlation 0-100; bandwidth rate
// 1000 B/s to 2^40 B/s, burst 0 or 1500 B to 1 GiB; partition needs peers and both directions;
// the selector's lists and values (ValidateSelectorLists); ports only with tcp, udp or any.
// Pure.
void ValidateNetworkFault(const v1::NetworkFault& fault, const std::string& path,
                          const NetworkValidationOptions& options, FieldProblems* problems);

}  // namespace faultline::faultspec
