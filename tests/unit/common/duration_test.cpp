#include "common/duration.h"

#include <gtest/gtest.h>

namespace faultline {
namespace {

using namespace std::chrono_literals;

TEST(DurationTest, ParsesEveryUnitAndCompounds) {
  EXPECT_EQ(*ParseDuration("250ms"), 250ms);
  EXPECT_EQ(*ParseDuration("5s"), 5s);
  EXPECT_EQ(*ParseDuration("15m"), 15min);
  EXPECT_EQ(*ParseDuration("2h"), 2h);
  EXPECT_EQ(*ParseDuration("1m30s"), 90s);
  EXPECT_EQ(*ParseDuration("10us"), 10us);
  EXPECT_EQ(*ParseDuration("0s"), 0s);
}

TEST(DurationTest, RejectsMalformedAndHugeValues) {
  for (const char* bad :
       {"", "5", "s", "-5s", "1.5s", "5 s", "5x", "99999999999999h", "8d", "169h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(DurationTest, FormatsShortestForm) {
  EXPECT_EQ(FormatDuration(250ms), "250ms");
  EXPECT_EQ(FormatDuration(90s), "1m30s");
  EXPECT_EQ(FormatDuration(15min), "15m");
  EXPECT_EQ(FormatDuration(0s), "0s");
}

}  // namespace
}  // namespace faultline
