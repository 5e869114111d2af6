#include "agent/dns/dns_responder.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <memory>
#include <random>

namespace faultline::agent::dns {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

DnsWire MakeQuery(const char* name, ldns_rr_type type, uint16_t id, bool rd) {
  ldns_pkt* raw = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&raw, name, type, LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0),
            LDNS_STATUS_OK);
  Pkt pkt(raw);
  ldns_pkt_set_id(pkt.get(), id);
  uint8_t* buf = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&buf, pkt.get(), &size), LDNS_STATUS_OK);
  DnsWire wire(buf, buf + size);
  std::free(buf);
  return wire;
}

Pkt Parse(const DnsWire& wire) {
  ldns_pkt* raw = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&raw, wire.data(), wire.size()), LDNS_STATUS_OK);
  return Pkt(raw);
}

std::string QuestionName(ldns_pkt* pkt) {
  char* s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(pkt), 0)));
  std::string out = s;
  std::free(s);
  return out;
}

struct ModeCase {
  v1::DnsFault::Mode mode;
  ldns_pkt_rcode rcode;
};

class FaultResponseTest : public ::testing::TestWithParam<ModeCase> {};

TEST_P(FaultResponseTest, AnswersWithTheModesRcodeAndEchoesTheQuestion) {
  for (bool rd : {true, false}) {
    DnsWire query = MakeQuery("Db.Example.Test.", LDNS_RR_TYPE_AAAA, 0xbeef, rd);
    auto built = BuildFaultResponse(query, GetParam().mode);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    ASSERT_TRUE(built->has_value());
    Pkt resp = Parse(**built);
    ASSERT_NE(resp, nullptr);
    EXPECT_EQ(ldns_pkt_id(resp.get()), 0xbeef);
    EXPECT_TRUE(ldns_pkt_qr(resp.get()));
    EXPECT_TRUE(ldns_pkt_ra(resp.get()));
    EXPECT_EQ(ldns_pkt_rd(resp.get()), rd);
    EXPECT_FALSE(ldns_pkt_aa(resp.get()));
    EXPECT_EQ(ldns_pkt_get_rcode(resp.get()), GetParam().rcode);
    EXPECT_EQ(ldns_pkt_get_opcode(resp.get()), LDNS_PACKET_QUERY);
    ASSERT_EQ(ldns_pkt_qdcount(resp.get()), 1);
    EXPECT_EQ(QuestionName(resp.get()), "Db.Example.Test.");
    ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(resp.get()), 0);
    EXPECT_EQ(ldns_rr_get_type(q), LDNS_RR_TYPE_AAAA);
    EXPECT_EQ(ldns_rr_get_class(q), LDNS_RR_CLASS_IN);
    EXPECT_EQ(ldns_pkt_ancount(resp.get()), 0);
    EXPECT_EQ(ldns_pkt_nscount(resp.get()), 0);
    EXPECT_EQ(ldns_pkt_arcount(resp.get()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, FaultResponseTest,
                         ::testing::Values(ModeCase{v1::DnsFault::NXDOMAIN, LDNS_RCODE_NXDOMAIN},
                                           ModeCase{v1::DnsFault::SERVFAIL, LDNS_RCODE_SERVFAIL},
                                           ModeCase{v1::DnsFault::NODATA, LDNS_RCODE_NOERROR},
                                           ModeCase{v1::DnsFault::REFUSED, LDNS_RCODE_REFUSED}),
                         [](const auto& info) { return v1::DnsFault::Mode_Name(info.param.mode); });

TEST(BuildFaultResponseTest, DropGivesNoResponse) {
  DnsWire query = MakeQuery("a.test", LDNS_RR_TYPE_A, 7, true);
  auto built = BuildFaultResponse(query, v1::DnsFault::DROP);
  ASSERT_TRUE(built.ok());
  EXPECT_FALSE(built->has_value());
}

TEST(BuildFaultResponseTest, RejectsUnspecifiedModeAndGarbage) {
  DnsWire query = MakeQuery("a.test", LDNS_RR_TYPE_A, 7, true);
  EXPECT_EQ(BuildFaultResponse(query, v1::DnsFault::MODE_UNSPECIFIED).status().code(),
            StatusCode::kInvalidArgument);
  DnsWire garbage = {0x01, 0x02, 0x03};
  EXPECT_EQ(BuildFaultResponse(garbage, v1::DnsFault::NXDOMAIN).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(BuildFaultResponseTest, AnswersAnEdnsQueryWithAnOptRecord) {
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_pkt_query_new_frm_str(&raw, "a.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  Pkt query(raw);
  ldns_pkt_set_edns_udp_size(query.get(), 4096);
  ldns_pkt_set_edns_do(query.get(), true);
  uint8_t* buf = nullptr;
  size_t size = 0;
  ASSERT_EQ(ldns_pkt2wire(&buf, query.get(), &size), LDNS_STATUS_OK);
  DnsWire wire(buf, buf + size);
  std::free(buf);
  auto built = BuildFaultResponse(wire, v1::DnsFault::NODATA);
  ASSERT_TRUE(built.ok());
  Pkt resp = Parse(**built);
  ASSERT_NE(resp, nullptr);
  EXPECT_TRUE(ldns_pkt_edns(resp.get()));
  EXPECT_TRUE(ldns_pkt_edns_do(resp.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(resp.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_ancount(resp.get()), 0);
}

// Negative caching (RFC 2308): a resolver caches NXDOMAIN/NODATA for min(SOA TTL, MINIMUM) of the
// SOA in the authority section, and not at all without one.
struct NegativeCase {
  v1::DnsFault::Mode mode;
  ldns_pkt_rcode rcode;
};

class NegativeAnswerTest : public ::testing::TestWithParam<NegativeCase> {};

ldns_rr* OnlyAuthorityRecord(ldns_pkt* pkt) {
  EXPECT_EQ(ldns_pkt_nscount(pkt), 1);
  if (ldns_pkt_nscount(pkt) != 1) return nullptr;
  return ldns_rr_list_rr(ldns_pkt_authority(pkt), 0);
}

std::string Text(const ldns_rdf* rdf) {
  char* s = ldns_rdf2str(rdf);
  std::string out = s == nullptr ? "" : s;
  std::free(s);
  return out;
}

TEST_P(NegativeAnswerTest, CarriesAnSoaWhoseTtlAndMinimumAreTheNegativeTtl) {
  for (uint32_t ttl : {0u, 1u, 60u, 86400u}) {
    FaultAnswer a;
    a.mode = GetParam().mode;
    a.negative_ttl_s = ttl;
    auto built = BuildFaultResponse(
        MakeQuery("db.us-east-1.example.test.", LDNS_RR_TYPE_A, 9, true), a, DnsTransport::kUdp);
    ASSERT_TRUE(built.ok() && built->has_value()) << built.status().ToString();
    Pkt resp = Parse(**built);
    ASSERT_NE(resp, nullptr);
    EXPECT_EQ(ldns_pkt_get_rcode(resp.get()), GetParam().rcode);
    EXPECT_EQ(ldns_pkt_ancount(resp.get()), 0);
    ldns_rr* soa = OnlyAuthorityRecord(resp.get());
    ASSERT_NE(soa, nullptr);
    EXPECT_EQ(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    EXPECT_EQ(ldns_rr_get_class(soa), LDNS_RR_CLASS_IN);
    // The owner is the queried name's parent: an ancestor, as a zone apex must be.
    EXPECT_EQ(Text(ldns_rr_owner(soa)), "us-east-1.example.test.");
    EXPECT_EQ(ldns_rr_ttl(soa), ttl);
    ASSERT_EQ(ldns_rr_rd_count(soa), 7u);
    EXPECT_EQ(Text(ldns_rr_rdf(soa, 0)), "faultline.invalid.");
    EXPECT_EQ(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), ttl);  // MINIMUM
  }
}

TEST_P(NegativeAnswerTest, WithoutANegativeTtlThereIsNoSoa) {
  FaultAnswer a;
  a.mode = GetParam().mode;
  auto built = BuildFaultResponse(MakeQuery("db.example.test.", LDNS_RR_TYPE_A, 9, true), a);
  ASSERT_TRUE(built.ok() && built->has_value());
  EXPECT_EQ(ldns_pkt_nscount(Parse(**built).get()), 0);
}

TEST_P(NegativeAnswerTest, AOneLabelNameGetsTheRootAsOwner) {
  FaultAnswer a;
  a.mode = GetParam().mode;
  a.negative_ttl_s = 30;
  auto built = BuildFaultResponse(MakeQuery("test.", LDNS_RR_TYPE_A, 9, true), a);
  ASSERT_TRUE(built.ok() && built->has_value());
  Pkt resp = Parse(**built);
  ldns_rr* soa = OnlyAuthorityRecord(resp.get());
  ASSERT_NE(soa, nullptr);
  EXPECT_EQ(Text(ldns_rr_owner(soa)), ".");
}

// A 253-character name in a 512-byte UDP message: the answer still goes out, within the size.
TEST_P(NegativeAnswerTest, ALongNameOverUdpStaysWithinTheSize) {
  std::string name;
  while (name.size() + 64 < 253) name += std::string(63, 'a') + ".";
  name += std::string(253 - name.size() - 5, 'b') + ".test";
  ASSERT_EQ(name.size(), 253u);
  FaultAnswer a;
  a.mode = GetParam().mode;
  a.negative_ttl_s = 30;
  auto built =
      BuildFaultResponse(MakeQuery(name.c_str(), LDNS_RR_TYPE_A, 9, true), a, DnsTransport::kUdp);
  ASSERT_TRUE(built.ok() && built->has_value()) << built.status().ToString();
  EXPECT_LE((*built)->size(), 512u);
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(**built).get()), GetParam().rcode);
}

INSTANTIATE_TEST_SUITE_P(Modes, NegativeAnswerTest,
                         ::testing::Values(NegativeCase{v1::DnsFault::NXDOMAIN,
                                                        LDNS_RCODE_NXDOMAIN},
                                           NegativeCase{v1::DnsFault::NODATA, LDNS_RCODE_NOERROR}),
                         [](const auto& info) { return v1::DnsFault::Mode_Name(info.param.mode); });

// SERVFAIL and REFUSED are not cached as negative answers, and SPOOF's NODATA (a type it has no
// address for) is not the fault a negative TTL describes: none of them carries an SOA.
TEST(NegativeAnswerOtherModesTest, OtherModesCarryNoSoaEvenWithANegativeTtl) {
  for (auto mode : {v1::DnsFault::SERVFAIL, v1::DnsFault::REFUSED, v1::DnsFault::SPOOF}) {
    FaultAnswer a;
    a.mode = mode;
    a.ipv4 = {"10.0.0.1"};
    a.negative_ttl_s = 60;
    auto built = BuildFaultResponse(MakeQuery("db.example.test.", LDNS_RR_TYPE_AAAA, 9, true), a);
    ASSERT_TRUE(built.ok() && built->has_value()) << v1::DnsFault::Mode_Name(mode);
    EXPECT_EQ(ldns_pkt_nscount(Parse(**built).get()), 0) << v1::DnsFault::Mode_Name(mode);
  }
}

TEST(MakeFaultAnswerTest, CarriesTheNegativeTtlOnlyWhenSet) {
  v1::DnsFault spec;
  spec.set_mode(v1::DnsFault::NODATA);
  EXPECT_FALSE(MakeFaultAnswer(spec)->negative_ttl_s.has_value());
  spec.set_negative_ttl_s(0);
  EXPECT_EQ(MakeFaultAnswer(spec)->negative_ttl_s, std::optional<uint32_t>(0));
  spec.set_negative_ttl_s(45);
  EXPECT_EQ(MakeFaultAnswer(spec)->negative_ttl_s, std::optional<uint32_t>(45));
}

TEST(ParseDnsQueryTest, ExtractsLowerCasedNameTypeAndId) {
  DnsWire query = MakeQuery("DynamoDB.US-East-1.Sandbox.Test.", LDNS_RR_TYPE_AAAA, 4242, true);
  auto q = ParseDnsQuery(query);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->name, "dynamodb.us-east-1.sandbox.test");
  EXPECT_EQ(q->qtype, LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(q->id, 4242);
}

TEST(ParseDnsQueryTest, RejectsGarbageEmptyAndResponses) {
  EXPECT_FALSE(ParseDnsQuery(DnsWire{}).ok());
  EXPECT_FALSE(ParseDnsQuery(DnsWire{0xde, 0xad, 0xbe, 0xef}).ok());
  DnsWire truncated = MakeQuery("a.test", LDNS_RR_TYPE_A, 1, true);
  truncated.resize(truncated.size() - 3);
  EXPECT_FALSE(ParseDnsQuery(truncated).ok());
  // A header with QDCOUNT 0.
  EXPECT_FALSE(ParseDnsQuery(DnsWire(12, 0)).ok());
  auto response =
      BuildFaultResponse(MakeQuery("a.test", LDNS_RR_TYPE_A, 1, true), v1::DnsFault::NXDOMAIN);
  ASSERT_TRUE(response.ok());
  auto parsed = ParseDnsQuery(**response);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("response"), std::string::npos);
}

TEST(ParsePlainDnsQueryTest, AgreesWithLdnsOnPlainQueries) {
  DnsWire plain = MakeQuery("DynamoDB.US-East-1.Sandbox_x.Test.", LDNS_RR_TYPE_AAAA, 4242, true);
  // The same query with an EDNS OPT record, as dig sends it.
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_pkt_query_new_frm_str(&raw, "Host1.Bench.Test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
                                       LDNS_RD),
            LDNS_STATUS_OK);
  Pkt query(raw);
  ldns_pkt_set_id(query.get(), 7);
  ldns_pkt_set_edns_udp_size(query.get(), 1232);
  uint8_t* buf = nullptr;
  size_t size = 0;
  ASSERT_EQ(ldns_pkt2wire(&buf, query.get(), &size), LDNS_STATUS_OK);
  DnsWire edns(buf, buf + size);
  std::free(buf);
  for (const DnsWire& wire : {plain, edns, MakeQuery(".", LDNS_RR_TYPE_NS, 9, false)}) {
    DnsQuestion fast;
    ASSERT_TRUE(ParsePlainDnsQuery(wire, &fast));
    auto slow = ParseDnsQuery(wire);
    ASSERT_TRUE(slow.ok());
    EXPECT_EQ(fast.name, slow->name);
    EXPECT_EQ(fast.qtype, slow->qtype);
    EXPECT_EQ(fast.id, slow->id);
  }
}

TEST(ParsePlainDnsQueryTest, LeavesEverythingElseToLdns) {
  DnsQuestion q;
  EXPECT_FALSE(ParsePlainDnsQuery(DnsWire{}, &q));
  EXPECT_FALSE(ParsePlainDnsQuery(DnsWire(12, 0), &q));  // no question
  DnsWire truncated = MakeQuery("a.test", LDNS_RR_TYPE_A, 1, true);
  truncated.resize(truncated.size() - 3);
  EXPECT_FALSE(ParsePlainDnsQuery(truncated, &q));
  DnsWire trailing = MakeQuery("a.test", LDNS_RR_TYPE_A, 1, true);
  trailing.push_back(0);
  EXPECT_FALSE(ParsePlainDnsQuery(trailing, &q));
  // A label holding a dot must never read as two labels ("a.b" + "test" is not "a.b.test").
  DnsWire dotted = MakeQuery("a\\.b.test", LDNS_RR_TYPE_A, 1, true);
  EXPECT_FALSE(ParsePlainDnsQuery(dotted, &q));
  auto slow = ParseDnsQuery(dotted);
  ASSERT_TRUE(slow.ok());
  EXPECT_NE(slow->name, "a.b.test");
  auto response =
      BuildFaultResponse(MakeQuery("a.test", LDNS_RR_TYPE_A, 1, true), v1::DnsFault::NXDOMAIN);
  ASSERT_TRUE(response.ok());
  EXPECT_FALSE(ParsePlainDnsQuery(**response, &q));
}

// A deterministic differential check (the fuzz target does the same open-ended): byte flips,
// truncations and extensions of real queries; wherever the fast path answers, ldns must agree.
TEST(ParsePlainDnsQueryTest, AgreesWithLdnsOnMutatedQueries) {
  std::vector<DnsWire> seeds = {MakeQuery("Host1.Bench.Test.", LDNS_RR_TYPE_A, 1, true),
                                MakeQuery("a-b_c.d.", LDNS_RR_TYPE_AAAA, 2, false),
                                MakeQuery(".", LDNS_RR_TYPE_NS, 3, true)};
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_pkt_query_new_frm_str(&raw, "e.test", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_IN, 0),
            LDNS_STATUS_OK);
  Pkt edns(raw);
  ldns_pkt_set_edns_udp_size(edns.get(), 4096);
  uint8_t* buf = nullptr;
  size_t size = 0;
  ASSERT_EQ(ldns_pkt2wire(&buf, edns.get(), &size), LDNS_STATUS_OK);
  seeds.emplace_back(buf, buf + size);
  std::free(buf);
  std::mt19937 rng(42);
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    DnsWire w = seeds[rng() % seeds.size()];
    for (int flips = 1 + rng() % 3; flips > 0; --flips) {
      switch (rng() % 4) {
        case 0:
          w[rng() % w.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          w[rng() % w.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 2:
          if (w.size() > 1) w.resize(rng() % w.size());
          break;
        default:
          w.push_back(static_cast<uint8_t>(rng()));
          break;
      }
      if (w.empty()) w.push_back(0);
    }
    DnsQuestion fast;
    if (!ParsePlainDnsQuery(w, &fast)) continue;
    ++accepted;
    auto slow = ParseDnsQuery(w);
    ASSERT_TRUE(slow.ok()) << "iteration " << i << ": " << slow.status().ToString();
    ASSERT_EQ(fast.name, slow->name) << "iteration " << i;
    ASSERT_EQ(fast.qtype, slow->qtype) << "iteration " << i;
    ASSERT_EQ(fast.id, slow->id) << "iteration " << i;
  }
  EXPECT_GT(accepted, 1000u);  // the mutations kept many plain queries plain
}

TEST(MayHaveCnameTest, FalseOnlyWithoutACnameInTheAnswer) {
  FaultAnswer spoof;
  spoof.mode = v1::DnsFault::SPOOF;
  spoof.ipv4 = {"10.0.0.1", "10.0.0.2"};
  auto answer = BuildFaultResponse(MakeQuery("a.test", LDNS_RR_TYPE_A, 1, true), spoof);
  ASSERT_TRUE(answer.ok() && answer->has_value());
  EXPECT_FALSE(MayHaveCname(**answer));
  EXPECT_TRUE(CnameTargets(**answer).empty());
  // A response with a CNAME: built with ldns from text.
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_pkt_query_new_frm_str(&raw, "alias.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0),
            LDNS_STATUS_OK);
  Pkt pkt(raw);
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_rr* rr = nullptr;
  ASSERT_EQ(ldns_rr_new_frm_str(&rr, "alias.test. 30 IN CNAME Target.Test.", 0, nullptr, nullptr),
            LDNS_STATUS_OK);
  ASSERT_TRUE(ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, rr));
  uint8_t* buf = nullptr;
  size_t size = 0;
  ASSERT_EQ(ldns_pkt2wire(&buf, pkt.get(), &size), LDNS_STATUS_OK);
  DnsWire wire(buf, buf + size);
  std::free(buf);
  EXPECT_TRUE(MayHaveCname(wire));
  EXPECT_EQ(CnameTargets(wire), std::vector<std::string>{"target.test"});
  // Bytes that do not frame: let ldns decide.
  EXPECT_TRUE(MayHaveCname(DnsWire{1, 2, 3}));
}

}  // namespace
}  // namespace faultline::agent::dns
