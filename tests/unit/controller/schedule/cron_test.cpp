#include "controller/schedule/cron.h"

#include <gtest/gtest.h>

#include <ctime>

namespace faultline::schedule {
namespace {

int64_t Utc(int y, int mo, int d, int h, int mi) {
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  return static_cast<int64_t>(timegm(&t)) * 1000;
}

class CronTest : public ::testing::Test {
 protected:
  int64_t Next(const std::string& expr, int64_t after, const std::string& zone = "UTC") {
    auto cron = CronExpression::Parse(expr);
    EXPECT_TRUE(cron.ok()) << cron.status().ToString();
    auto tz = TimeZone::Load(zone);
    EXPECT_TRUE(tz.ok()) << tz.status().ToString();
    if (!cron.ok() || !tz.ok()) return -1;
    return cron->NextAfter(after, *tz).value_or(-1);
  }
  std::string ParseError(const std::string& expr) {
    auto cron = CronExpression::Parse(expr);
    return cron.ok() ? "" : cron.status().message();
  }
};

TEST_F(CronTest, RejectsMalformedExpressionsNamingTheField) {
  EXPECT_NE(ParseError("61 * * * *").find("cron field 1 (minute): 61 is out of range 0-59"),
            std::string::npos);
  EXPECT_NE(ParseError("* 24 * * *").find("field 2 (hour)"), std::string::npos);
  EXPECT_NE(ParseError("* * 0 * *").find("field 3 (day-of-month)"), std::string::npos);
  EXPECT_NE(ParseError("* * * foo *").find("field 4 (month): 'foo' is not a number or a name"),
            std::string::npos);
  EXPECT_NE(ParseError("* * * * 8").find("field 5 (day-of-week)"), std::string::npos);
  EXPECT_NE(ParseError("* * *").find("has 3 fields"), std::string::npos);
  EXPECT_NE(ParseError("*/0 * * * *").find("step"), std::string::npos);
  EXPECT_NE(ParseError("5-1 * * * *").find("backwards"), std::string::npos);
  EXPECT_NE(ParseError("1,,2 * * * *").find("empty list item"), std::string::npos);
  EXPECT_NE(ParseError("mon * * * *").find("not a number"), std::string::npos);
  EXPECT_NE(ParseError("@reboot").find("unknown cron macro"), std::string::npos);
  EXPECT_EQ(ParseError("0 9 * jan-mar MON-fri"), "");
}

TEST_F(CronTest, StepsListsAndRanges) {
  EXPECT_EQ(Next("*/15 * * * *", Utc(2026, 11, 22, 12, 7)), Utc(2026, 11, 22, 12, 15));
  EXPECT_EQ(Next("*/15 * * * *", Utc(2026, 11, 22, 12, 15)), Utc(2026, 11, 22, 12, 30));
  EXPECT_EQ(Next("5,50 * * * *", Utc(2026, 11, 22, 12, 7)), Utc(2026, 11, 22, 12, 50));
  EXPECT_EQ(Next("10-20/5 * * * *", Utc(2026, 11, 22, 12, 16)), Utc(2026, 11, 22, 12, 20));
  EXPECT_EQ(Next("10-20/5 * * * *", Utc(2026, 11, 22, 12, 21)), Utc(2026, 11, 22, 13, 10));
  EXPECT_EQ(Next("50/5 * * * *", Utc(2026, 11, 22, 12, 56)), Utc(2026, 11, 22, 13, 50));
  // Seconds inside the minute do not make it fire again in the same minute.
  EXPECT_EQ(Next("* * * * *", Utc(2026, 11, 22, 12, 7) + 59'999), Utc(2026, 11, 22, 12, 8));
}

TEST_F(CronTest, NamesAndSundayAsSeven) {
  // 2026-11-20 is a Friday.
  EXPECT_EQ(Next("0 9 * * mon-fri", Utc(2026, 11, 20, 10, 0)), Utc(2026, 11, 23, 9, 0));
  EXPECT_EQ(Next("0 9 * * 7", Utc(2026, 11, 20, 10, 0)), Utc(2026, 11, 22, 9, 0));
  EXPECT_EQ(Next("0 9 * * SUN", Utc(2026, 11, 20, 10, 0)), Utc(2026, 11, 22, 9, 0));
  EXPECT_EQ(Next("0 0 1 feb *", Utc(2026, 11, 20, 10, 0)), Utc(2027, 2, 1, 0, 0));
}

TEST_F(CronTest, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // 2026-11-01 is a Sunday: the first Friday (the 6th) comes before the 13th.
  EXPECT_EQ(Next("0 0 13 * fri", Utc(2026, 11, 1, 12, 0)), Utc(2026, 11, 6, 0, 0));
  EXPECT_EQ(Next("0 0 13 * fri", Utc(2026, 11, 6, 12, 0)), Utc(2026, 11, 13, 0, 0));
  // A '*'-led day-of-week leaves day-of-month alone deciding (Vixie's DOW_STAR).
  EXPECT_EQ(Next("0 0 13 * *", Utc(2026, 11, 1, 12, 0)), Utc(2026, 11, 13, 0, 0));
  EXPECT_EQ(Next("0 0 13 * */1", Utc(2026, 11, 1, 12, 0)), Utc(2026, 11, 13, 0, 0));
  // And a '*'-led day-of-month leaves day-of-week deciding.
  EXPECT_EQ(Next("0 0 * * fri", Utc(2026, 11, 1, 12, 0)), Utc(2026, 11, 6, 0, 0));
}

TEST_F(CronTest, MacrosInATimeZone) {
  // New York is UTC-5 in November.
  EXPECT_EQ(Next("@daily", Utc(2026, 11, 22, 12, 0), "America/New_York"), Utc(2026, 11, 23, 5, 0));
  EXPECT_EQ(Next("@hourly", Utc(2026, 11, 22, 12, 0)), Utc(2026, 11, 22, 13, 0));
  EXPECT_EQ(Next("@weekly", Utc(2026, 11, 22, 12, 0)), Utc(2026, 11, 29, 0, 0));
  EXPECT_EQ(Next("@monthly", Utc(2026, 11, 22, 12, 0)), Utc(2026, 12, 1, 0, 0));
  EXPECT_EQ(Next("@yearly", Utc(2026, 11, 22, 12, 0), "Asia/Kolkata"),
            Utc(2026, 12, 31, 18, 30));  // 00:00 IST = 18:30 UTC the day before
}

TEST_F(CronTest, SpringForwardGapFiresWhenTheGapEnds) {
  // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC). 02:30 does not exist.
  EXPECT_EQ(Next("30 2 * * *", Utc(2026, 3, 28, 12, 0), "Europe/Berlin"), Utc(2026, 3, 29, 1, 0));
  EXPECT_EQ(Next("30 2 * * *", Utc(2026, 3, 29, 1, 0), "Europe/Berlin"), Utc(2026, 3, 30, 0, 30));
  // Every minute of the gap maps to one instant: it fires once there, then 03:01 CEST.
  EXPECT_EQ(Next("* * * * *", Utc(2026, 3, 29, 0, 59), "Europe/Berlin"), Utc(2026, 3, 29, 1, 0));
  EXPECT_EQ(Next("* * * * *", Utc(2026, 3, 29, 1, 0), "Europe/Berlin"), Utc(2026, 3, 29, 1, 1));
  // A time outside the gap is unaffected: 09:00 CEST = 07:00 UTC.
  EXPECT_EQ(Next("0 9 * * *", Utc(2026, 3, 29, 0, 0), "Europe/Berlin"), Utc(2026, 3, 29, 7, 0));
}

TEST_F(CronTest, FallBackRepeatedHourFiresOnce) {
  // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:30 happens
  // at 00:30 UTC and again at 01:30 UTC. Only the first fires.
  EXPECT_EQ(Next("30 2 * * *", Utc(2026, 10, 24, 12, 0), "Europe/Berlin"),
            Utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(Next("30 2 * * *", Utc(2026, 10, 25, 0, 30), "Europe/Berlin"),
            Utc(2026, 10, 26, 1, 30));
  // Hourly: 02:00 CEST (00:00 UTC), then 03:00 CET (02:00 UTC): the repeated 02:00 is skipped.
  EXPECT_EQ(Next("0 * * * *", Utc(2026, 10, 25, 0, 0), "Europe/Berlin"), Utc(2026, 10, 25, 2, 0));
}

TEST_F(CronTest, ImpossibleDateNeverFires) {
  EXPECT_EQ(Next("0 0 30 2 *", Utc(2026, 1, 1, 0, 0)), -1);
  EXPECT_EQ(Next("0 0 29 2 *", Utc(2026, 1, 1, 0, 0)), Utc(2028, 2, 29, 0, 0));
}

TEST(TimeZoneTest, UnknownZoneIsRejected) {
  auto tz = TimeZone::Load("Mars/Olympus_Mons");
  ASSERT_FALSE(tz.ok());
  EXPECT_NE(tz.status().message().find("unknown time zone 'Mars/Olympus_Mons'"), std::string::npos);
  auto berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok());
  TimeZone::Civil c = berlin->ToLocal(Utc(2026, 7, 1, 22, 30));  // CEST: 00:30 next day
  EXPECT_EQ(c.year, 2026);
  EXPECT_EQ(c.month, 7);
  EXPECT_EQ(c.day, 2);
  EXPECT_EQ(c.hour, 0);
  EXPECT_EQ(c.minute, 30);
  EXPECT_EQ(c.weekday, 4);  // Thursday
}

TEST(RunWindowTest, PlainAndAcrossMidnight) {
  auto day = RunWindow::Parse("09:00-17:30");
  ASSERT_TRUE(day.ok());
  EXPECT_FALSE(day->Contains(8, 59));
  EXPECT_TRUE(day->Contains(9, 0));
  EXPECT_TRUE(day->Contains(17, 29));
  EXPECT_FALSE(day->Contains(17, 30));
  auto night = RunWindow::Parse("22:00-04:00");
  ASSERT_TRUE(night.ok());
  EXPECT_TRUE(night->Contains(23, 0));
  EXPECT_TRUE(night->Contains(3, 59));
  EXPECT_FALSE(night->Contains(4, 0));
  EXPECT_FALSE(night->Contains(12, 0));
  EXPECT_TRUE(RunWindow::Parse("")->Contains(12, 0));
  EXPECT_TRUE(RunWindow::Parse("00:00-24:00")->Contains(23, 59));
  EXPECT_FALSE(RunWindow::Parse("9-17").ok());
  EXPECT_FALSE(RunWindow::Parse("25:00-26:00").ok());
  EXPECT_FALSE(RunWindow::Parse("10:00-10:00").ok());
  EXPECT_FALSE(RunWindow::Parse("10:00-11:00x").ok());
}

TEST(ValidateDateTest, OnlyRealDates) {
  EXPECT_TRUE(ValidateDate("2026-12-24").ok());
  EXPECT_TRUE(ValidateDate("2028-02-29").ok());
  EXPECT_FALSE(ValidateDate("2026-02-29").ok());
  EXPECT_FALSE(ValidateDate("2026-13-01").ok());
  EXPECT_FALSE(ValidateDate("26-12-24").ok());
  EXPECT_FALSE(ValidateDate("2026-12-24x").ok());
}

}  // namespace
}  // namespace faultline::schedule
