#include "agent/dns/dns_backend.h"

#include <gtest/gtest.h>

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

TEST(FirstNameserverTest, ReturnsTheFirstNameserverLine) {
  auto ns =
      FirstNameserver("# comment\nsearch example\nnameserver 10.77.0.2\nnameserver 1.1.1.1\n");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(*ns, "10.77.0.2");
  EXPECT_EQ(FirstNameserver("search x\n").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace faultline::agent::dns
