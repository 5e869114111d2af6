#include "agent/dns/dns_backend.h"

#include <gtest/gtest.h>

#include <functional>

namespace faultline::agent::dns {
namespace {

v1::FaultSpec DnsSpec(std::vector<std::string> domains, v1::DnsFault::Mode mode) {
  v1::FaultSpec spec;
  for (auto& d : domains) spec.mutable_dns()->add_domains(d);
  spec.mutable_dns()->set_mode(mode);
  return spec;
}

// Validate touches nothing on the host, so it runs without root.
class DnsBackendValidateTest : public ::testing::Test {
 protected:
  DnsBackend backend_{DnsBackendOptions{}};
};

TEST_F(DnsBackendValidateTest, AcceptsAWellFormedSpec) {
  EXPECT_TRUE(
      backend_
          .Validate(DnsSpec({"dynamodb.us-east-1.sandbox.test", "*.x.test"}, v1::DnsFault::NODATA))
          .ok());
}

TEST_F(DnsBackendValidateTest, RejectsASpecWithoutDns) {
  Status s = backend_.Validate(v1::FaultSpec());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dns"), std::string::npos);
}

TEST_F(DnsBackendValidateTest, RejectsUnspecifiedMode) {
  Status s = backend_.Validate(DnsSpec({"a.test"}, v1::DnsFault::MODE_UNSPECIFIED));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dns.mode"), std::string::npos);
}

TEST_F(DnsBackendValidateTest, RejectsNoDomainsOrTooMany) {
  EXPECT_NE(backend_.Validate(DnsSpec({}, v1::DnsFault::DROP)).message().find("dns.domains"),
            std::string::npos);
  std::vector<std::string> many(65, "a.test");
  EXPECT_EQ(backend_.Validate(DnsSpec(many, v1::DnsFault::DROP)).code(),
            StatusCode::kInvalidArgument);
  many.resize(64);
  EXPECT_TRUE(backend_.Validate(DnsSpec(many, v1::DnsFault::DROP)).ok());
}

TEST_F(DnsBackendValidateTest, NamesTheInvalidDomain) {
  Status s = backend_.Validate(DnsSpec({"ok.test", "bad domain"}, v1::DnsFault::NXDOMAIN));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dns.domains[1]"), std::string::npos) << s.message();
}

// The hostile inputs of the fuzz corpus (tests/fuzz/corpus/agent_request): each is refused with a
// message naming the field and the problem, before anything reaches nftables or the interceptor.
TEST_F(DnsBackendValidateTest, RefusesHostileDomainsAndModesWithAClearError) {
  struct Case {
    std::string domain;
    int mode;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"a.test;$(reboot)", v1::DnsFault::DROP,
       "dns.domains[0]: domain 'a.test;$(reboot)' has invalid character ';'"},
      {"a.test\"; flush ruleset; \"", v1::DnsFault::DROP, "has invalid character '\"'"},
      {std::string(300, 'x') + ".test", v1::DnsFault::DROP, "longer than 253 characters"},
      {std::string(64, 'x') + ".test", v1::DnsFault::DROP, "a label longer than 63 characters"},
      {"*", v1::DnsFault::DROP, "a wildcard needs a suffix"},
      {"a.*.test", v1::DnsFault::DROP, "'*' is allowed only as the first label"},
      {"a.test", 99, "dns.mode: must be one of"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.domain);
    v1::FaultSpec spec;
    spec.mutable_dns()->add_domains(c.domain);
    spec.mutable_dns()->set_mode(static_cast<v1::DnsFault::Mode>(c.mode));
    Status s = backend_.Validate(spec);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.error), std::string::npos) << s.message();
  }
}

TEST_F(DnsBackendValidateTest, ChecksTheNewFieldsAndNamesTheFieldAtFault) {
  struct Case {
    std::function<void(v1::DnsFault*)> edit;
    const char* field;  // empty: valid
  };
  std::vector<Case> cases = {
      {[](v1::DnsFault* d) {
         d->set_mode(v1::DnsFault::SPOOF);
         d->add_spoof_addresses("10.0.0.1");
         d->add_spoof_addresses("fd00::1");
       },
       ""},
      {[](v1::DnsFault* d) { d->set_mode(v1::DnsFault::SPOOF); }, "spoof_addresses"},
      {[](v1::DnsFault* d) {
         d->set_mode(v1::DnsFault::SPOOF);
         d->add_spoof_addresses("db.example.com");
       },
       "spoof_addresses"},
      {[](v1::DnsFault* d) { d->add_spoof_addresses("10.0.0.1"); }, "spoof_addresses"},
      {[](v1::DnsFault* d) { d->set_mode(v1::DnsFault::DELAY); }, "delay_ms"},
      {[](v1::DnsFault* d) {
         d->set_mode(v1::DnsFault::DELAY);
         d->set_delay_ms(800);
         d->set_jitter_ms(200);
       },
       ""},
      {[](v1::DnsFault* d) {
         d->set_mode(v1::DnsFault::DROP);
         d->set_delay_ms(800);
       },
       "delay_ms"},
      {[](v1::DnsFault* d) { d->set_probability(0.0); }, "probability"},
      {[](v1::DnsFault* d) { d->set_probability(1.5); }, "probability"},
      {[](v1::DnsFault* d) { d->set_probability(0.25); }, ""},
      {[](v1::DnsFault* d) { d->add_record_types("AAAA"); }, ""},
      {[](v1::DnsFault* d) { d->add_record_types("NOPE"); }, "record_types"},
      {[](v1::DnsFault* d) { d->set_cgroup("system.slice/orders.service"); }, ""},
      {[](v1::DnsFault* d) { d->set_cgroup("/a/../b"); }, "cgroup"},
      {[](v1::DnsFault* d) { d->set_cgroup("a\" counter accept"); }, "cgroup"},
      {[](v1::DnsFault* d) { d->set_uid(1000); }, ""},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    v1::FaultSpec spec = DnsSpec({"a.test"}, v1::DnsFault::NXDOMAIN);
    cases[i].edit(spec.mutable_dns());
    Status s = backend_.Validate(spec);
    if (std::string(cases[i].field).empty()) {
      EXPECT_TRUE(s.ok()) << i << ": " << s.ToString();
    } else {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << i;
      EXPECT_NE(s.message().find(cases[i].field), std::string::npos) << i << ": " << s.message();
    }
  }
}

// Every repeated field is bounded at the agent: a spoof with 65 536 addresses used to be
// accepted and made the interceptor's answer table grow to gigabytes.
TEST_F(DnsBackendValidateTest, RefusesASpoofWithMoreAddressesThanTheBound) {
  v1::FaultSpec spec = DnsSpec({"a.test"}, v1::DnsFault::SPOOF);
  for (int i = 0; i < 65536; ++i) spec.mutable_dns()->add_spoof_addresses("10.0.0.1");
  Status s = backend_.Validate(spec);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dns.spoof_addresses"), std::string::npos) << s.message();
  spec.mutable_dns()->mutable_spoof_addresses()->DeleteSubrange(16, 65536 - 16);
  EXPECT_TRUE(backend_.Validate(spec).ok());
}

// The parser accepted 16 record types while the agent accepted every type ldns knows.
TEST_F(DnsBackendValidateTest, AcceptsTheSameRecordTypesAsTheParser) {
  v1::FaultSpec spec = DnsSpec({"a.test"}, v1::DnsFault::NODATA);
  spec.mutable_dns()->add_record_types("HTTPS");
  EXPECT_TRUE(backend_.Validate(spec).ok());
  spec.mutable_dns()->add_record_types("TYPE65");
  EXPECT_NE(backend_.Validate(spec).message().find("dns.record_types[1]"), std::string::npos);
}

TEST(FirstNameserverTest, ReturnsTheFirstNameserverLine) {
  auto ns =
      FirstNameserver("# comment\nsearch example\nnameserver 10.77.0.2\nnameserver 1.1.1.1\n");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(*ns, "10.77.0.2");
  EXPECT_EQ(FirstNameserver("search x\n").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace faultline::agent::dns
