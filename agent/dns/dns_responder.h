#pragma once
// DNS wire handling for the interceptor, through ldns (never hand-rolled parsing): reading a
// query's question and building the answer a DNS fault gives.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::dns {

using DnsWire = std::vector<uint8_t>;

// The largest DNS message: what the 2-byte length prefix of DNS over TCP can frame.
inline constexpr size_t kMaxDnsMessageSize = 65535;

// How a query arrived, which bounds its answer's size: UDP to the size the query advertises
// (512 bytes without EDNS, its EDNS payload size otherwise, RFC 1035 4.2.1 / RFC 6891 6.2.3),
// TCP to kMaxDnsMessageSize.
enum class DnsTransport { kUdp, kTcp };

// The first question of a DNS query.
struct DnsQuestion {
  uint16_t id = 0;
  std::string name;    // lower-case, no trailing dot ("" for the root)
  uint16_t qtype = 0;  // e.g. 1 for A, 28 for AAAA
};

// Parses a query message. INVALID_ARGUMENT when the bytes are not a DNS message, the message is
// a response (QR set), or it carries no question.
Result<DnsQuestion> ParseDnsQuery(std::span<const uint8_t> wire);

// The same as ParseDnsQuery without ldns and without allocating (beyond `name`), for the
// interceptor's per-query path: true when the message is a plain query — QR clear, one question
// whose name is plain labels (letters, digits, '-', '_', no compression), no answer or authority
// records, at most one additional record and that an EDNS OPT, nothing after it — and then fills
// `out` exactly as ParseDnsQuery would. False for anything else: call ParseDnsQuery, which decides.
bool ParsePlainDnsQuery(std::span<const uint8_t> wire, DnsQuestion* out);

// False only when `response` certainly holds no CNAME record in its answer section (it frames
// correctly and none of its answer records has type CNAME): CnameTargets would be empty. True
// otherwise, including for bytes that do not frame as a DNS message. Never allocates.
bool MayHaveCname(std::span<const uint8_t> response);

// Builds the fault's response to `query`: same id, opcode and question, QR and RA set, RD and
// CD copied, an EDNS OPT record when the query had one; rcode NXDOMAIN, SERVFAIL or REFUSED,
// or NOERROR with no answer records for NODATA; no authority records (see FaultAnswer for the
// SOA that NXDOMAIN and NODATA answers may carry).
// DROP yields std::nullopt (no response at all). INVALID_ARGUMENT when the query does not parse
// (see ParseDnsQuery) or the mode is unspecified/unknown.
Result<std::optional<DnsWire>> BuildFaultResponse(std::span<const uint8_t> query,
                                                  v1::DnsFault::Mode mode);

// What a fault answers with. For SPOOF, A queries get `ipv4` records and AAAA queries `ipv6`
// records (TTL ttl_s), in the order given; any other type, or a family with no address, gets
// NODATA. DELAY is not an answer of its own (the upstream's answer is sent late): INVALID_ARGUMENT.
// A response never exceeds what `transport` allows (see DnsTransport): records that would not
// fit are left out and the TC bit is set (RFC 2181 section 9), whatever the length of the
// address lists, so a UDP client retries over TCP and gets as many as 65535 bytes hold.
//
// Negative caching (RFC 2308): with negative_ttl_s set, NXDOMAIN and NODATA answers carry one SOA
// record in the authority section, TTL and MINIMUM both negative_ttl_s, so a caching resolver
// keeps the negative answer that long. The agent knows no real zone, so the SOA's owner is the
// parent of the queried name (the root for a one-label name): always a strict ancestor, as a
// zone apex must be for NXDOMAIN, and in bailiwick for any resolver that forwards the name.
// MNAME faultline.invalid., RNAME hostmaster.faultline.invalid. (RFC 6761 .invalid: visibly
// synthetic), serial 1. Without negative_ttl_s, and for every other mode (SPOOF's NODATA for
// other types included), no authority record: RFC 2308 resolvers then do not cache the answer.
struct FaultAnswer {
  v1::DnsFault::Mode mode = v1::DnsFault::MODE_UNSPECIFIED;
  std::vector<std::string> ipv4;  // numeric, validated by MakeFaultAnswer
  std::vector<std::string> ipv6;
  uint32_t ttl_s = 30;
  std::optional<uint32_t> negative_ttl_s;
};

// Builds a FaultAnswer from the spec's mode, spoof_addresses/spoof_ttl_s and negative_ttl_s
// (taken as given: ValidateDnsFault bounds it and allows it only with NXDOMAIN/NODATA).
// INVALID_ARGUMENT for an address that is neither numeric IPv4 nor IPv6, or SPOOF without any
// address.
Result<FaultAnswer> MakeFaultAnswer(const v1::DnsFault& spec);

// As above, for any mode including SPOOF.
Result<std::optional<DnsWire>> BuildFaultResponse(std::span<const uint8_t> query,
                                                  const FaultAnswer& answer,
                                                  DnsTransport transport = DnsTransport::kTcp);

// The targets of the CNAME records in a response's answer section (normalised), in order. Empty
// when the bytes do not parse as a response or hold no CNAME.
std::vector<std::string> CnameTargets(std::span<const uint8_t> response);

}  // namespace faultline::agent::dns
