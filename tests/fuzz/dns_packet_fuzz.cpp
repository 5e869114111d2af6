// libFuzzer target for the DNS interceptor's packet path: every function that sees a client's
// or an upstream's bytes (ParseDnsQuery and its fast path ParsePlainDnsQuery, which must agree,
// BuildFaultResponse in every mode, CnameTargets and MayHaveCname), and the
// matcher on whatever name the parser extracted. Build: cmake -DFAULTLINE_FUZZ=ON with clang.
#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/dns/dns_matcher.h"
#include "agent/dns/dns_responder.h"

using namespace faultline::agent::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> wire(data, size);
  static const DomainMatcher kMatcher =
      *DomainMatcher::Create({"db.example.com", "*.sandbox.test"}, false);
  static const DomainMatcher kSuffix = *DomainMatcher::Create({"example.com"}, true);
  auto q = ParseDnsQuery(wire);
  if (q.ok()) {
    (void)kMatcher.Matches(q->name);
    (void)kSuffix.Matches(q->name);
  }
  for (auto mode : {faultline::v1::DnsFault::DROP, faultline::v1::DnsFault::NXDOMAIN,
                    faultline::v1::DnsFault::SERVFAIL, faultline::v1::DnsFault::NODATA,
                    faultline::v1::DnsFault::REFUSED, faultline::v1::DnsFault::SPOOF}) {
    FaultAnswer a;
    a.mode = mode;
    a.ipv4 = {"10.77.0.99"};
    a.ipv6 = {"fd00::99"};
    // The negative answers' SOA (its owner comes from the question) over UDP, where it may not fit.
    if (size % 2 == 1) a.negative_ttl_s = 60;
    auto r = BuildFaultResponse(wire, a, size % 4 == 1 ? DnsTransport::kUdp : DnsTransport::kTcp);
    // A fault answer must itself parse as a DNS message with the same id.
    if (r.ok() && r->has_value() && q.ok()) {
      if ((*r)->size() < 2 || (((**r)[0] << 8) | (**r)[1]) != q->id) __builtin_trap();
    }
  }
  // The interceptor's fast paths must agree with ldns wherever they give an answer.
  DnsQuestion plain;
  if (ParsePlainDnsQuery(wire, &plain)) {
    if (!q.ok() || q->name != plain.name || q->qtype != plain.qtype || q->id != plain.id) {
      __builtin_trap();
    }
  }
  const auto targets = CnameTargets(wire);
  if (!targets.empty() && !MayHaveCname(wire)) __builtin_trap();
  for (const auto& t : targets) (void)kMatcher.Matches(t);
  return 0;
}
