#include "agent/dns/dns_responder.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <memory>

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
