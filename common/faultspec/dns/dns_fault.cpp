#include "common/faultspec/dns/dns_fault.h"

#include <arpa/inet.h>

#include <cctype>
#include <utility>

#include "common/dns_name.h"
#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {
namespace {

constexpr std::pair<std::string_view, uint16_t> kRecordTypes[] = {
    {"A", 1},     {"AAAA", 28},  {"CNAME", 5}, {"MX", 15},    {"TXT", 16},  {"SRV", 33},
    {"NS", 2},    {"PTR", 12},   {"SOA", 6},   {"HTTPS", 65}, {"SVCB", 64}, {"CAA", 257},
    {"ANY", 255}, {"NAPTR", 35}, {"DS", 43},   {"DNSKEY", 48}};
static_assert(std::size(kRecordTypes) == std::size(kDnsRecordTypeNames));

std::string RecordTypeList() {
  std::string out;
  for (std::string_view n : kDnsRecordTypeNames) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

bool IsNumericAddress(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

}  // namespace

std::optional<uint16_t> DnsRecordTypeNumber(std::string_view name) {
  if (name.size() > 8) return std::nullopt;
  std::string upper(name);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& [n, number] : kRecordTypes) {
    if (n == upper) return number;
  }
  return std::nullopt;
}

void ValidateDnsFault(const v1::DnsFault& dns, const std::string& path, FieldProblems* problems) {
  using v1::DnsFault;
  if (dns.mode() == DnsFault::MODE_UNSPECIFIED || !DnsFault::Mode_IsValid(dns.mode())) {
    problems->Add(path + ".mode",
                  "must be one of drop, nxdomain, servfail, nodata, refused, spoof, delay");
  }
  if (!DnsFault::Match_IsValid(dns.match())) {
    problems->Add(path + ".match", "must be exact (as written) or suffix");
  }
  if (dns.domains_size() < 1 || dns.domains_size() > kMaxDnsDomains) {
    problems->Add(path + ".domains",
                  "needs 1 to 64 names, got " + std::to_string(dns.domains_size()));
  } else {
    for (int i = 0; i < dns.domains_size(); ++i) {
      if (Status s = ValidateDnsName(dns.domains(i), /*allow_wildcard=*/true); !s.ok()) {
        problems->Add(Indexed(path + ".domains", i), s.message());
      }
    }
  }
  if (dns.record_types_size() > kMaxDnsRecordTypes) {
    problems->Add(path + ".record_types",
                  "at most 16 record types, got " + std::to_string(dns.record_types_size()));
  } else {
    for (int i = 0; i < dns.record_types_size(); ++i) {
      if (!DnsRecordTypeNumber(dns.record_types(i))) {
        std::string shown = dns.record_types(i).substr(0, 16);
        for (auto& c : shown) {
          if (!std::isalnum(static_cast<unsigned char>(c))) c = '?';
        }
        problems->Add(
            Indexed(path + ".record_types", i),
            "unknown record type '" + shown + "' (expected one of " + RecordTypeList() + ")");
      }
    }
  }
  const bool spoof = dns.mode() == DnsFault::SPOOF;
  if (!spoof && dns.spoof_addresses_size() > 0) {
    problems->Add(path + ".spoof_addresses", "only for mode spoof");
  } else if (spoof && (dns.spoof_addresses_size() < 1 ||
                       dns.spoof_addresses_size() > kMaxDnsSpoofAddresses)) {
    problems->Add(path + ".spoof_addresses",
                  "mode spoof answers with 1 to 16 IPv4/IPv6 addresses, got " +
                      std::to_string(dns.spoof_addresses_size()));
  } else {
    for (int i = 0; i < dns.spoof_addresses_size(); ++i) {
      if (!IsNumericAddress(dns.spoof_addresses(i))) {
        problems->Add(
            Indexed(path + ".spoof_addresses", i),
            "'" + dns.spoof_addresses(i).substr(0, 64) + "' is not a numeric IPv4 or IPv6 address");
      }
    }
  }
  if (dns.spoof_ttl_s() != 0 && !spoof) {
    problems->Add(path + ".spoof_ttl_s", "only for mode spoof");
  } else if (dns.spoof_ttl_s() > kMaxDnsSpoofTtlS) {
    problems->Add(path + ".spoof_ttl_s", "at most 24h");
  }
  if (dns.has_negative_ttl_s()) {
    if (dns.mode() != DnsFault::NXDOMAIN && dns.mode() != DnsFault::NODATA) {
      problems->Add(path + ".negative_ttl_s",
                    "only for modes nxdomain and nodata (the answers a resolver caches as "
                    "negative)");
    } else if (dns.negative_ttl_s() > kMaxDnsNegativeTtlS) {
      problems->Add(path + ".negative_ttl_s", "at most 24h");
    }
  }
  if (dns.delay_ms() > kMaxDnsDelayMs) problems->Add(path + ".delay_ms", "at most 60s");
  if (dns.jitter_ms() > kMaxDnsDelayMs) problems->Add(path + ".jitter_ms", "at most 60s");
  if (dns.mode() == DnsFault::DELAY && dns.delay_ms() == 0 && dns.jitter_ms() == 0) {
    problems->Add(path + ".delay_ms", "mode delay needs a delay greater than 0");
  }
  if (dns.mode() == DnsFault::DROP) {
    if (dns.delay_ms() > 0) {
      problems->Add(path + ".delay_ms", "mode drop sends no answer, so it cannot be delayed");
    }
    if (dns.jitter_ms() > 0) {
      problems->Add(path + ".jitter_ms", "mode drop sends no answer, so it cannot be delayed");
    }
  }
  if (dns.has_probability() && !(dns.probability() > 0.0 && dns.probability() <= 1.0)) {
    problems->Add(path + ".probability", "must be a share in (0, 1]");
  }
  if (!dns.cgroup().empty()) {
    if (Status s = ValidateCgroupPath(dns.cgroup()); !s.ok()) {
      problems->Add(path + ".cgroup", s.message());
    }
  }
  if (dns.has_uid() && dns.uid() > kMaxDnsUid) {
    problems->Add(path + ".uid", "must be 0 to 4294967294");
  }
}

}  // namespace faultline::faultspec
