#include "agent/dns/dns_matcher.h"

#include <gtest/gtest.h>

namespace faultline::agent::dns {
namespace {

DomainMatcher Make(std::vector<std::string> patterns) {
  auto m = DomainMatcher::Create(patterns);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return *m;
}

TEST(DomainMatcherTest, ExactNameMatchesOnlyItself) {
  DomainMatcher m = Make({"dynamodb.us-east-1.amazonaws.com"});
  EXPECT_TRUE(m.Matches("dynamodb.us-east-1.amazonaws.com"));
  EXPECT_FALSE(m.Matches("x.dynamodb.us-east-1.amazonaws.com"));
  EXPECT_FALSE(m.Matches("us-east-1.amazonaws.com"));
  EXPECT_FALSE(m.Matches("dynamodb.us-east-1.amazonaws.co"));
}

TEST(DomainMatcherTest, WildcardMatchesStrictSubdomainsOnly) {
  DomainMatcher m = Make({"*.amazonaws.com"});
  EXPECT_TRUE(m.Matches("dynamodb.amazonaws.com"));
  EXPECT_TRUE(m.Matches("a.b.c.amazonaws.com"));
  EXPECT_FALSE(m.Matches("amazonaws.com"));
  EXPECT_FALSE(m.Matches("notamazonaws.com"));
  EXPECT_FALSE(m.Matches("amazonaws.com.evil.test"));
}

TEST(DomainMatcherTest, MatchingIsCaseInsensitive) {
  DomainMatcher m = Make({"Db.Example.COM", "*.Sandbox.Test"});
  EXPECT_TRUE(m.Matches("db.example.com"));
  EXPECT_TRUE(m.Matches("DB.EXAMPLE.COM"));
  EXPECT_TRUE(m.Matches("X.sandbox.TEST"));
}

TEST(DomainMatcherTest, TrailingDotIsIgnored) {
  DomainMatcher m = Make({"db.example.com.", "*.sandbox.test"});
  EXPECT_TRUE(m.Matches("db.example.com"));
  EXPECT_TRUE(m.Matches("db.example.com."));
  EXPECT_TRUE(m.Matches("a.sandbox.test."));
  EXPECT_FALSE(m.Matches("sandbox.test."));
}

TEST(DomainMatcherTest, AnyOfSeveralPatternsMatches) {
  DomainMatcher m = Make({"a.test", "*.b.test"});
  EXPECT_TRUE(m.Matches("a.test"));
  EXPECT_TRUE(m.Matches("x.b.test"));
  EXPECT_FALSE(m.Matches("c.test"));
}

TEST(DomainMatcherTest, CreateNamesTheInvalidPattern) {
  auto m = DomainMatcher::Create({"ok.test", "bad..test"});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("domains[1]"), std::string::npos) << m.status().message();
}

TEST(DomainPatternTest, AcceptsValidPatterns) {
  for (const char* p : {"a", "a.test", "x-y_z.example.com", "*.example.com", "EXAMPLE.com.",
                        "1.2.3.in-addr.arpa"}) {
    EXPECT_TRUE(ValidateDomainPattern(p).ok()) << p;
  }
}

TEST(DomainPatternTest, RejectsInvalidPatternsWithReason) {
  struct Case {
    std::string pattern;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"", "empty"},
      {".", "empty"},
      {"a..b", "empty label"},
      {".a.b", "empty label"},
      {std::string(64, 'a') + ".test", "longer than 63"},
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
           std::string(63, 'd'),
       "longer than 253"},
      {"a b.test", "invalid character ' '"},
      {"a/b.test", "invalid character '/'"},
      {"a.*.test", "first label"},
      {"*", "needs a suffix"},
      {"*x.test", "invalid character '*'"},
  };
  for (const auto& c : cases) {
    Status s = ValidateDomainPattern(c.pattern);
    ASSERT_FALSE(s.ok()) << c.pattern;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.reason), std::string::npos) << c.pattern << ": " << s.message();
  }
}

TEST(DomainPatternTest, AcceptsMaximumLengths) {
  std::string label63(63, 'a');
  EXPECT_TRUE(ValidateDomainPattern(label63 + ".test").ok());
  // 63+1+63+1+63+1+61 = 253 characters.
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'd');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_TRUE(ValidateDomainPattern(name253).ok());
  EXPECT_TRUE(ValidateDomainPattern(name253 + ".").ok());
}

TEST(DomainMatcherTest, SuffixModeMatchesTheNameAndEverySubdomain) {
  auto m = DomainMatcher::Create({"Example.COM", "*.other.test"}, /*suffix=*/true);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->Matches("example.com"));
  EXPECT_TRUE(m->Matches("a.b.EXAMPLE.com."));
  EXPECT_FALSE(m->Matches("badexample.com"));
  EXPECT_FALSE(m->Matches("example.com.evil"));
  // In suffix mode a leading "*." is redundant: the name itself matches too.
  EXPECT_TRUE(m->Matches("other.test"));
  EXPECT_TRUE(m->Matches("x.other.test"));
  // As written (the default), "example.com" is exact.
  auto exact = DomainMatcher::Create({"example.com"});
  ASSERT_TRUE(exact.ok());
  EXPECT_FALSE(exact->Matches("a.example.com"));
}

TEST(NormalizeDomainNameTest, LowerCasesAndStripsTrailingDot) {
  EXPECT_EQ(NormalizeDomainName("Db.Example.COM."), "db.example.com");
  EXPECT_EQ(NormalizeDomainName("."), "");
}

}  // namespace
}  // namespace faultline::agent::dns
