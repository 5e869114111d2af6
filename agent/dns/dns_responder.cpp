#include "agent/dns/dns_responder.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>

#include <cctype>
#include <cstdlib>
#include <memory>

#include "agent/dns/dns_matcher.h"

namespace faultline::agent::dns {
namespace {

struct PktDeleter {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktDeleter>;

Result<PktPtr> ParseQueryPacket(std::span<const uint8_t> wire) {
  if (wire.empty()) return InvalidArgument("empty DNS message");
  ldns_pkt* raw = nullptr;
  ldns_status st = ldns_wire2pkt(&raw, wire.data(), wire.size());
  if (st != LDNS_STATUS_OK || raw == nullptr) {
    return InvalidArgument(std::string("not a DNS message: ") + ldns_get_errorstr_by_id(st));
  }
  PktPtr pkt(raw);
  if (ldns_pkt_qr(pkt.get())) return InvalidArgument("DNS message is a response, not a query");
  ldns_rr_list* q = ldns_pkt_question(pkt.get());
  if (q == nullptr || ldns_rr_list_rr_count(q) == 0) {
    return InvalidArgument("DNS query has no question");
  }
  return pkt;
}

// The SOA of a negative answer to `question` (see FaultAnswer): owner the parent of the
// question's name, TTL and MINIMUM `ttl_s`. nullptr when ldns cannot allocate.
ldns_rr* NegativeAnswerSoa(const ldns_rr* question, uint32_t ttl_s) {
  const ldns_rdf* qname = ldns_rr_owner(question);
  ldns_rdf* owner = ldns_dname_label_count(qname) > 0 ? ldns_dname_left_chop(qname) : nullptr;
  if (owner == nullptr) owner = ldns_dname_new_frm_str(".");
  ldns_rr* rr = ldns_rr_new();
  ldns_rdf* fields[] = {
      ldns_dname_new_frm_str("faultline.invalid."),
      ldns_dname_new_frm_str("hostmaster.faultline.invalid."),
      ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, 1),       // serial
      ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, 3600),   // refresh
      ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, 600),    // retry
      ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, 86400),  // expire
      ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, ttl_s),  // minimum: the negative TTL
  };
  bool complete = owner != nullptr && rr != nullptr;
  for (ldns_rdf* f : fields) complete = complete && f != nullptr;
  if (!complete) {
    for (ldns_rdf* f : fields) {
      if (f != nullptr) ldns_rdf_deep_free(f);
    }
    if (owner != nullptr) ldns_rdf_deep_free(owner);
    if (rr != nullptr) ldns_rr_free(rr);
    return nullptr;
  }
  ldns_rr_set_owner(rr, owner);
  ldns_rr_set_type(rr, LDNS_RR_TYPE_SOA);
  ldns_rr_set_class(rr, ldns_rr_get_class(question));
  ldns_rr_set_ttl(rr, ttl_s);
  for (ldns_rdf* f : fields) ldns_rr_push_rdf(rr, f);
  return rr;
}

}  // namespace

Result<DnsQuestion> ParseDnsQuery(std::span<const uint8_t> wire) {
  auto pkt = ParseQueryPacket(wire);
  if (!pkt.ok()) return pkt.status();
  ldns_rr* rr = ldns_rr_list_rr(ldns_pkt_question(pkt->get()), 0);
  DnsQuestion q;
  q.id = ldns_pkt_id(pkt->get());
  q.qtype = static_cast<uint16_t>(ldns_rr_get_type(rr));
  char* owner = ldns_rdf2str(ldns_rr_owner(rr));
  if (owner == nullptr) return InvalidArgument("DNS question name is unreadable");
  q.name = NormalizeDomainName(owner);
  std::free(owner);
  return q;
}

namespace {

constexpr size_t kHeaderSize = 12;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeOpt = 41;

uint16_t ReadU16(std::span<const uint8_t> wire, size_t pos) {
  return static_cast<uint16_t>((wire[pos] << 8) | wire[pos + 1]);
}

// Moves `pos` past a (possibly compressed) name. False when it does not fit.
bool SkipName(std::span<const uint8_t> wire, size_t& pos) {
  while (pos < wire.size()) {
    const uint8_t len = wire[pos];
    if ((len & 0xc0) == 0xc0) {  // a compression pointer ends the name
      if (pos + 2 > wire.size()) return false;
      pos += 2;
      return true;
    }
    if ((len & 0xc0) != 0) return false;  // reserved label types
    pos += 1 + len;
    if (len == 0) return true;
  }
  return false;
}

// Moves `pos` past one resource record; its type in `type`. False when it does not fit.
bool SkipRecord(std::span<const uint8_t> wire, size_t& pos, uint16_t* type) {
  if (!SkipName(wire, pos) || pos + 10 > wire.size()) return false;
  *type = ReadU16(wire, pos);
  const size_t rdlength = ReadU16(wire, pos + 8);
  pos += 10;
  if (pos + rdlength > wire.size()) return false;
  pos += rdlength;
  return true;
}

bool PlainLabelChar(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

bool ParsePlainDnsQuery(std::span<const uint8_t> wire, DnsQuestion* out) {
  if (wire.size() < kHeaderSize || (wire[2] & 0x80) != 0) return false;  // short, or a response
  if (ReadU16(wire, 4) != 1 || ReadU16(wire, 6) != 0 || ReadU16(wire, 8) != 0) return false;
  const uint16_t arcount = ReadU16(wire, 10);
  if (arcount > 1) return false;
  std::string& name = out->name;
  name.clear();
  size_t pos = kHeaderSize;
  while (true) {
    if (pos >= wire.size()) return false;
    const uint8_t len = wire[pos++];
    if (len == 0) break;
    if (len > 63 || pos + len > wire.size()) return false;  // also rejects compression
    if (!name.empty()) name.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      const uint8_t c = wire[pos + i];
      if (!PlainLabelChar(c)) return false;  // escapes, dots, binary: ldns renders those
      name.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    }
    pos += len;
  }
  if (name.size() > 253 || pos + 4 > wire.size()) return false;
  const uint16_t qtype = ReadU16(wire, pos);
  pos += 4;
  if (arcount == 1) {
    uint16_t type = 0;
    if (pos >= wire.size() || wire[pos] != 0) return false;  // OPT's owner is the root
    if (!SkipRecord(wire, pos, &type) || type != kTypeOpt) return false;
  }
  if (pos != wire.size()) return false;
  out->id = ReadU16(wire, 0);
  out->qtype = qtype;
  return true;
}

bool MayHaveCname(std::span<const uint8_t> response) {
  if (response.size() < kHeaderSize) return true;
  const size_t qdcount = ReadU16(response, 4);
  const size_t ancount = ReadU16(response, 6);
  size_t pos = kHeaderSize;
  for (size_t i = 0; i < qdcount; ++i) {
    if (!SkipName(response, pos) || pos + 4 > response.size()) return true;
    pos += 4;
  }
  for (size_t i = 0; i < ancount; ++i) {
    uint16_t type = 0;
    if (!SkipRecord(response, pos, &type) || type == kTypeCname) return true;
  }
  return false;
}

Result<std::optional<DnsWire>> BuildFaultResponse(std::span<const uint8_t> query,
                                                  v1::DnsFault::Mode mode) {
  FaultAnswer answer;
  answer.mode = mode;
  return BuildFaultResponse(query, answer);
}

Result<FaultAnswer> MakeFaultAnswer(const v1::DnsFault& spec) {
  FaultAnswer a;
  a.mode = spec.mode();
  a.ttl_s = spec.spoof_ttl_s() == 0 ? 30 : spec.spoof_ttl_s();
  if (spec.has_negative_ttl_s()) a.negative_ttl_s = spec.negative_ttl_s();
  for (int i = 0; i < spec.spoof_addresses_size(); ++i) {
    const std::string& text = spec.spoof_addresses(i);
    uint8_t buf[16];
    if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
      a.ipv4.push_back(text);
    } else if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
      a.ipv6.push_back(text);
    } else {
      return InvalidArgument("spoof_addresses[" + std::to_string(i) + "]: '" + text +
                             "' is not a numeric IPv4 or IPv6 address");
    }
  }
  if (a.mode == v1::DnsFault::SPOOF && a.ipv4.empty() && a.ipv6.empty()) {
    return InvalidArgument("spoof_addresses: spoof needs at least one address");
  }
  return a;
}

std::vector<std::string> CnameTargets(std::span<const uint8_t> response) {
  std::vector<std::string> out;
  if (response.empty()) return out;
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, response.data(), response.size()) != LDNS_STATUS_OK || raw == nullptr) {
    return out;
  }
  PktPtr pkt(raw);
  ldns_rr_list* answers = ldns_pkt_answer(pkt.get());
  for (size_t i = 0; answers != nullptr && i < ldns_rr_list_rr_count(answers); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(answers, i);
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || ldns_rr_rd_count(rr) < 1) continue;
    char* target = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    if (target == nullptr) continue;
    out.push_back(NormalizeDomainName(target));
    std::free(target);
  }
  return out;
}

Result<std::optional<DnsWire>> BuildFaultResponse(std::span<const uint8_t> query,
                                                  const FaultAnswer& answer,
                                                  DnsTransport transport) {
  const v1::DnsFault::Mode mode = answer.mode;
  uint8_t rcode = 0;
  switch (mode) {
    case v1::DnsFault::DROP:
      break;
    case v1::DnsFault::NXDOMAIN:
      rcode = LDNS_RCODE_NXDOMAIN;
      break;
    case v1::DnsFault::SERVFAIL:
      rcode = LDNS_RCODE_SERVFAIL;
      break;
    case v1::DnsFault::NODATA:
    case v1::DnsFault::SPOOF:
      rcode = LDNS_RCODE_NOERROR;
      break;
    case v1::DnsFault::REFUSED:
      rcode = LDNS_RCODE_REFUSED;
      break;
    default:
      return InvalidArgument("DNS fault mode is unspecified or unknown");
  }
  auto pkt = ParseQueryPacket(query);
  if (!pkt.ok()) return pkt.status();
  if (mode == v1::DnsFault::DROP) return std::optional<DnsWire>();
  // The largest UDP payload over IPv4 (65535 - 20 - 8).
  constexpr size_t kMaxUdpPayload = 65507;
  size_t limit = kMaxDnsMessageSize;
  if (transport == DnsTransport::kUdp) {
    const size_t advertised = ldns_pkt_edns(pkt->get()) ? ldns_pkt_edns_udp_size(pkt->get()) : 0;
    limit = std::clamp<size_t>(advertised, 512, kMaxUdpPayload);
  }

  PktPtr resp(ldns_pkt_new());
  if (!resp) return Internal("ldns_pkt_new failed");
  ldns_pkt_set_id(resp.get(), ldns_pkt_id(pkt->get()));
  ldns_pkt_set_opcode(resp.get(), ldns_pkt_get_opcode(pkt->get()));
  ldns_pkt_set_qr(resp.get(), true);
  ldns_pkt_set_rd(resp.get(), ldns_pkt_rd(pkt->get()));
  ldns_pkt_set_cd(resp.get(), ldns_pkt_cd(pkt->get()));
  ldns_pkt_set_ra(resp.get(), true);
  ldns_pkt_set_rcode(resp.get(), rcode);
  // The response echoes the question (all of them, as received) and nothing else.
  ldns_rr_list* questions = ldns_pkt_question(pkt->get());
  for (size_t i = 0; i < ldns_rr_list_rr_count(questions); ++i) {
    ldns_rr* copy = ldns_rr_clone(ldns_rr_list_rr(questions, i));
    if (copy == nullptr || !ldns_pkt_push_rr(resp.get(), LDNS_SECTION_QUESTION, copy)) {
      if (copy != nullptr) ldns_rr_free(copy);
      return Internal("ldns: cannot copy the question");
    }
  }
  bool addrs_left_out = false;
  if (mode == v1::DnsFault::SPOOF && ldns_rr_list_rr_count(questions) > 0) {
    ldns_rr* q = ldns_rr_list_rr(questions, 0);
    const ldns_rr_type qtype = ldns_rr_get_type(q);
    const std::vector<std::string>* addrs = qtype == LDNS_RR_TYPE_A      ? &answer.ipv4
                                            : qtype == LDNS_RR_TYPE_AAAA ? &answer.ipv6
                                                                         : nullptr;
    // No more records than a 65535-byte message could hold even with the owner compressed to a
    // 2-byte pointer: a spoof list of any length costs at most that much to build.
    const size_t rdlength = qtype == LDNS_RR_TYPE_A ? 4 : 16;
    const size_t most = limit / (2 + 10 + rdlength);
    addrs_left_out = addrs != nullptr && addrs->size() > most;
    for (size_t i = 0; addrs != nullptr && i < std::min(addrs->size(), most); ++i) {
      ldns_rdf* rdata = ldns_rdf_new_frm_str(
          qtype == LDNS_RR_TYPE_A ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, (*addrs)[i].c_str());
      ldns_rdf* owner = ldns_rdf_clone(ldns_rr_owner(q));
      ldns_rr* rr = ldns_rr_new();
      if (rdata == nullptr || owner == nullptr || rr == nullptr) {
        if (rdata) ldns_rdf_deep_free(rdata);
        if (owner) ldns_rdf_deep_free(owner);
        if (rr) ldns_rr_free(rr);
        return Internal("ldns: cannot build a spoofed record");
      }
      ldns_rr_set_owner(rr, owner);
      ldns_rr_set_type(rr, qtype);
      ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
      ldns_rr_set_ttl(rr, answer.ttl_s);
      ldns_rr_push_rdf(rr, rdata);
      if (!ldns_pkt_push_rr(resp.get(), LDNS_SECTION_ANSWER, rr)) {
        ldns_rr_free(rr);
        return Internal("ldns: cannot add a spoofed record");
      }
    }
  }
  const bool negative = mode == v1::DnsFault::NXDOMAIN || mode == v1::DnsFault::NODATA;
  if (negative && answer.negative_ttl_s && ldns_rr_list_rr_count(questions) > 0) {
    ldns_rr* soa = NegativeAnswerSoa(ldns_rr_list_rr(questions, 0), *answer.negative_ttl_s);
    if (soa == nullptr) return Internal("ldns: cannot build the negative answer's SOA");
    if (!ldns_pkt_push_rr(resp.get(), LDNS_SECTION_AUTHORITY, soa)) {
      ldns_rr_free(soa);
      return Internal("ldns: cannot add the negative answer's SOA");
    }
  }
  // RFC 6891: a query with an OPT record gets one back. 1232 is the DNS Flag Day 2020 size.
  if (ldns_pkt_edns(pkt->get())) {
    ldns_pkt_set_edns_udp_size(resp.get(), 1232);
    ldns_pkt_set_edns_do(resp.get(), ldns_pkt_edns_do(pkt->get()));
  }
  bool truncated = addrs_left_out;
  while (true) {
    if (truncated) ldns_pkt_set_tc(resp.get(), true);
    uint8_t* buf = nullptr;
    size_t size = 0;
    ldns_status st = ldns_pkt2wire(&buf, resp.get(), &size);
    if (st != LDNS_STATUS_OK || buf == nullptr) {
      return Internal(std::string("ldns_pkt2wire: ") + ldns_get_errorstr_by_id(st));
    }
    DnsWire out(buf, buf + size);
    std::free(buf);
    ldns_rr_list* answers = ldns_pkt_answer(resp.get());
    const size_t count = ldns_rr_list_rr_count(answers);
    if (out.size() <= limit) return std::optional<DnsWire>(std::move(out));
    ldns_rr_list* authority = ldns_pkt_authority(resp.get());
    if (count == 0 && ldns_rr_list_rr_count(authority) > 0) {
      // Only a negative answer's SOA with a long name in a small UDP message: the answer is
      // complete without it, merely not cached.
      while (ldns_rr_list_rr_count(authority) > 0) ldns_rr_free(ldns_rr_list_pop_rr(authority));
      ldns_pkt_set_nscount(resp.get(), 0);
      continue;
    }
    if (count == 0) return Internal("DNS response too large");
    // Too large for the transport (TCP frames at most 65535 bytes, UDP what the query allows):
    // leave out the records that do not fit and say so with TC (RFC 2181 section 9). The records
    // are all the same size, so one estimate, then one record at a time if compression made it
    // inexact.
    const size_t per = std::max<size_t>(1, (out.size() - 12) / count);
    const size_t excess = out.size() - limit;
    size_t drop = std::min(count, std::max<size_t>(1, (excess + per - 1) / per));
    for (; drop > 0; --drop) ldns_rr_free(ldns_rr_list_pop_rr(answers));
    ldns_pkt_set_ancount(resp.get(), static_cast<uint16_t>(ldns_rr_list_rr_count(answers)));
    truncated = true;
  }
}

}  // namespace faultline::agent::dns
