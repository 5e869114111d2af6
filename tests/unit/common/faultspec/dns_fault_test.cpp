#include "common/faultspec/dns/dns_fault.h"

#include <gtest/gtest.h>

#include <string>

namespace faultline::faultspec {
namespace {

v1::DnsFault Spoof() {
  v1::DnsFault d;
  d.add_domains("db.test");
  d.set_mode(v1::DnsFault::SPOOF);
  d.add_spoof_addresses("10.0.0.1");
  return d;
}

Status Check(const v1::DnsFault& d) {
  FieldProblems problems;
  ValidateDnsFault(d, "dns", &problems);
  return problems.ToStatus();
}

TEST(ValidateDnsFaultTest, AcceptsAWellFormedSpoof) { EXPECT_TRUE(Check(Spoof()).ok()); }

// A spoof with 65 536 addresses made the interceptor's answer table grow without bound.
TEST(ValidateDnsFaultTest, BoundsEveryRepeatedField) {
  v1::DnsFault d = Spoof();
  for (int i = 0; i < 65536; ++i) d.add_spoof_addresses("10.0.0.2");
  EXPECT_NE(Check(d).message().find("dns.spoof_addresses: mode spoof answers with 1 to 16"),
            std::string::npos)
      << Check(d).message();

  d = Spoof();
  for (int i = 0; i < kMaxDnsDomains; ++i) d.add_domains("x.test");
  EXPECT_NE(Check(d).message().find("dns.domains: needs 1 to 64 names, got 65"), std::string::npos);

  d = Spoof();
  for (int i = 0; i <= kMaxDnsRecordTypes; ++i) d.add_record_types("A");
  EXPECT_NE(Check(d).message().find("dns.record_types: at most 16"), std::string::npos);
}

// The parser accepted 16 record types, the agent every type ldns knows; now both accept the 16.
TEST(ValidateDnsFaultTest, RecordTypesAreTheSixteenNamedOnesInAnyCase) {
  for (std::string_view t : kDnsRecordTypeNames) {
    v1::DnsFault d = Spoof();
    d.add_record_types(std::string(t));
    EXPECT_TRUE(Check(d).ok()) << t;
  }
  EXPECT_EQ(DnsRecordTypeNumber("aaaa"), 28);
  EXPECT_EQ(DnsRecordTypeNumber("HTTPS"), 65);
  for (const char* bad : {"TYPE65", "NULL", "", "A;"}) {
    v1::DnsFault d = Spoof();
    d.add_record_types(bad);
    EXPECT_NE(Check(d).message().find("dns.record_types[0]: unknown record type"),
              std::string::npos)
        << bad;
  }
}

TEST(ValidateDnsFaultTest, SpoofFieldsOnlyForSpoofAndTtlBounded) {
  v1::DnsFault d = Spoof();
  d.set_spoof_ttl_s(86401);
  EXPECT_NE(Check(d).message().find("dns.spoof_ttl_s"), std::string::npos);
  d.set_spoof_ttl_s(60);
  EXPECT_TRUE(Check(d).ok());
  d.set_mode(v1::DnsFault::NXDOMAIN);
  d.clear_spoof_addresses();
  EXPECT_NE(Check(d).message().find("dns.spoof_ttl_s: only for mode spoof"), std::string::npos);
}

TEST(ValidateDnsFaultTest, NegativeTtlOnlyForNxdomainAndNodataAndBounded) {
  v1::DnsFault d;
  d.add_domains("db.test");
  for (auto mode : {v1::DnsFault::NXDOMAIN, v1::DnsFault::NODATA}) {
    d.set_mode(mode);
    for (uint32_t ttl : {0u, 1u, kMaxDnsNegativeTtlS}) {
      d.set_negative_ttl_s(ttl);
      EXPECT_TRUE(Check(d).ok()) << Check(d).message();
    }
    d.set_negative_ttl_s(kMaxDnsNegativeTtlS + 1);
    EXPECT_NE(Check(d).message().find("dns.negative_ttl_s: at most 24h"), std::string::npos);
  }
  d.set_negative_ttl_s(30);
  for (auto mode :
       {v1::DnsFault::SERVFAIL, v1::DnsFault::REFUSED, v1::DnsFault::DROP, v1::DnsFault::DELAY}) {
    d.set_mode(mode);
    d.set_delay_ms(mode == v1::DnsFault::DELAY ? 100 : 0);
    EXPECT_NE(Check(d).message().find("dns.negative_ttl_s: only for modes nxdomain and nodata"),
              std::string::npos)
        << v1::DnsFault::Mode_Name(mode);
  }
  v1::DnsFault s = Spoof();
  s.set_negative_ttl_s(30);
  EXPECT_NE(Check(s).message().find("dns.negative_ttl_s"), std::string::npos);
}

TEST(ValidateDnsFaultTest, UidOfMinusOneIsRefused) {
  v1::DnsFault d = Spoof();
  d.set_uid(4294967295u);
  EXPECT_NE(Check(d).message().find("dns.uid"), std::string::npos);
  d.set_uid(0);
  EXPECT_TRUE(Check(d).ok());
}

TEST(ValidateDnsFaultTest, DropCannotBeDelayedAndDelayNeedsADelay) {
  v1::DnsFault d;
  d.add_domains("db.test");
  d.set_mode(v1::DnsFault::DROP);
  d.set_jitter_ms(5);
  EXPECT_NE(Check(d).message().find("dns.jitter_ms: mode drop"), std::string::npos);
  d.set_mode(v1::DnsFault::DELAY);
  d.set_jitter_ms(0);
  EXPECT_NE(Check(d).message().find("dns.delay_ms: mode delay needs"), std::string::npos);
  d.set_delay_ms(60001);
  EXPECT_NE(Check(d).message().find("dns.delay_ms: at most 60s"), std::string::npos);
}

}  // namespace
}  // namespace faultline::faultspec
