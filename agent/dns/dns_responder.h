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

// The first question of a DNS query.
struct DnsQuestion {
  uint16_t id = 0;
  std::string name;    // lower-case, no trailing dot ("" for the root)
  uint16_t qtype = 0;  // e.g. 1 for A, 28 for AAAA
};

// Parses a query message. INVALID_ARGUMENT when the bytes are not a DNS message, the message is
// a response (QR set), or it carries no question.
Result<DnsQuestion> ParseDnsQuery(std::span<const uint8_t> wire);

// Builds the fault's response to `query`: same id, opcode and question, QR and RA set, RD and
// CD copied, an EDNS OPT record when the query had one; rcode NXDOMAIN, SERVFAIL or REFUSED,
// or NOERROR with no answer or authority records for NODATA.
// DROP yields std::nullopt (no response at all). INVALID_ARGUMENT when the query does not parse
// (see ParseDnsQuery) or the mode is unspecified/unknown.
Result<std::optional<DnsWire>> BuildFaultResponse(std::span<const uint8_t> query,
                                                  v1::DnsFault::Mode mode);

}  // namespace faultline::agent::dns
