#pragma once
// Rules shared by more than one fault kind: peer addresses (CIDRs), peer host names, ports and
// the re-resolution interval of a NetworkSelector (network and dependency faults), and the
// cgroup v2 path rule (dns scope, process selector). Pure; kernel-free.

#include <cstdint>
#include <string>

#include "common/faultspec/field_problems.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

// Bounds on a NetworkSelector's repeated fields (each list separately).
inline constexpr int kMaxCidrs = 256;  // cidrs, and exclude_cidrs
inline constexpr int kMaxHosts = 16;
inline constexpr int kMaxPorts = 64;  // remote_ports, and local_ports
inline constexpr uint32_t kMinResolveIntervalMs = 100;
inline constexpr uint32_t kMaxResolveIntervalMs = 3'600'000;
// Longest cgroup path below the cgroup v2 root.
inline constexpr size_t kMaxCgroupPath = 512;

// "10.1.2.3" or "10.0.0.0/8" or "fd00::/64" in canonical form (host bits cleared), with the
// family; INVALID_ARGUMENT (quoting at most 64 characters of `text`) for anything else.
struct Cidr {
  bool v6 = false;
  std::string text;
};
Result<Cidr> ParseCidr(const std::string& text);

// Checks the parts of a selector every kind that uses one shares: the lists' bounds, every CIDR
// (cidrs, exclude_cidrs), every host name (a DNS name, no wildcard), every port (1-65535),
// resolve_interval_ms (0 or 100 ms to 1 h), and that direction and protocol are known enum
// values. `path` is the selector's own path ("network.match"). What a kind allows beyond that
// (directions, protocol with ports, required peers) is the kind's own rule.
void ValidateSelectorLists(const v1::NetworkSelector& m, const std::string& path,
                           FieldProblems* problems);

// "system.slice/x.service" from "/system.slice/x.service/": no leading or trailing '/'.
std::string NormalizeCgroupPath(const std::string& path);

// OK when `path` names a cgroup below the cgroup v2 root: after NormalizeCgroupPath, 1 to 512
// characters of components made of letters, digits and . _ - @ : +, none of them empty, "." or
// "..". INVALID_ARGUMENT saying so otherwise.
Status ValidateCgroupPath(const std::string& path);

}  // namespace faultline::faultspec
