#include "common/faultspec/peer_rules.h"

#include <gtest/gtest.h>

#include <string>

namespace faultline::faultspec {
namespace {

TEST(ParseCidrTest, CidrsAreCanonicalised) {
  EXPECT_EQ(ParseCidr("10.1.2.3/8")->text, "10.0.0.0/8");
  EXPECT_EQ(ParseCidr("10.1.2.3")->text, "10.1.2.3");
  EXPECT_TRUE(ParseCidr("fd00::1/64")->v6);
  EXPECT_FALSE(ParseCidr("db.test").ok());
  EXPECT_FALSE(ParseCidr("10.0.0.1/").ok());
  EXPECT_FALSE(ParseCidr("10.0.0.1/33").ok());
}

TEST(CgroupPathTest, OneRuleForEveryKindThatNamesACgroup) {
  for (const char* ok : {"system.slice/orders.service", "/a/b/", "kv@1.service", "a:b+c"}) {
    EXPECT_TRUE(ValidateCgroupPath(ok).ok()) << ok;
  }
  for (const char* bad :
       {"", "/", "a/../b", "..", "a//b", "./a", "a/b c", "a/$(x)", "a\" counter accept"}) {
    EXPECT_FALSE(ValidateCgroupPath(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateCgroupPath(std::string(513, 'a')).ok());
  EXPECT_TRUE(ValidateCgroupPath(std::string(512, 'a')).ok());
  EXPECT_EQ(NormalizeCgroupPath("//a/b//"), "a/b");
}

TEST(ValidateSelectorListsTest, NamesEachBadEntry) {
  v1::NetworkSelector m;
  m.add_cidrs("10.0.0.0/8");
  m.add_cidrs("nope");
  m.add_hosts("db.test");
  m.add_hosts("bad host;rm");
  m.add_remote_ports(0);
  m.set_resolve_interval_ms(50);
  FieldProblems problems;
  ValidateSelectorLists(m, "network.match", &problems);
  std::vector<std::string> fields;
  for (const auto& p : problems.problems()) fields.push_back(p.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"network.match.cidrs[1]", "network.match.hosts[1]",
                                              "network.match.remote_ports[0]",
                                              "network.match.resolve_interval_ms"}));
}

}  // namespace
}  // namespace faultline::faultspec
