#pragma once
// The DNS fault kind (v1::DnsFault): every field's rule and limit, in one place for the agent
// and the experiment parser.

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/faultspec/field_problems.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

inline constexpr int kMaxDnsDomains = 64;
inline constexpr int kMaxDnsRecordTypes = 16;
inline constexpr int kMaxDnsSpoofAddresses = 16;
inline constexpr uint32_t kMaxDnsDelayMs = 60'000;    // delay_ms and jitter_ms
inline constexpr uint32_t kMaxDnsSpoofTtlS = 86'400;  // 24 h
// RFC 2308 section 5: negative caching beyond a day has been found problematic.
inline constexpr uint32_t kMaxDnsNegativeTtlS = 86'400;
inline constexpr uint32_t kMaxDnsUid = 4'294'967'294;  // (uid_t)-1 is "no uid"

// The record types a DNS fault may name, upper-case, in the order messages list them.
inline constexpr std::string_view kDnsRecordTypeNames[] = {
    "A",   "AAAA",  "CNAME", "MX",  "TXT", "SRV",   "NS", "PTR",
    "SOA", "HTTPS", "SVCB",  "CAA", "ANY", "NAPTR", "DS", "DNSKEY"};

// The record type number (1 for "A", 28 for "AAAA", ...) of one of kDnsRecordTypeNames, any
// case; nullopt for every other name. Pure.
std::optional<uint16_t> DnsRecordTypeNumber(std::string_view name);

// Adds a problem for every field of `dns` that breaks a rule (paths start with `path`, normally
// "dns"): mode set and known; match known; domains 1-64 DNS names (wildcard first label
// allowed); record_types at most 16, each one of kDnsRecordTypeNames; spoof_addresses only for
// SPOOF, 1-16 numeric IPv4/IPv6 addresses there; spoof_ttl_s only for SPOOF, at most 24 h;
// delay_ms/jitter_ms at most 60 s, none for DROP, DELAY needs one; probability in (0, 1];
// cgroup (see ValidateCgroupPath); uid not 4294967295; negative_ttl_s only for NXDOMAIN and
// NODATA, at most 24 h. Pure.
void ValidateDnsFault(const v1::DnsFault& dns, const std::string& path, FieldProblems* problems);

}  // namespace faultline::faultspec
