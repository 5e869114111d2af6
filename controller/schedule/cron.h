#pragma once
// Cron expressions and when they fire, in a time zone.
//
// Syntax (Vixie cron's five fields): minute hour day-of-month month day-of-week, each a list of
// `*`, `N`, `N-M`, with an optional `/STEP` (`*/15`, `1-30/5`, `5/20` = 5-max/20); month and
// day names (`jan`, `mon-fri`, any case); day-of-week 0 and 7 are Sunday. Macros: @yearly
// @annually @monthly @weekly @daily @midnight @hourly. As in Vixie cron, when both day fields
// are restricted (neither starts with `*`) a day matches if EITHER matches; otherwise both must.
//
// Time zones come from the system tz database (/usr/share/zoneinfo, through date/tz.h built
// with USE_OS_TZDB). Across DST changes each local wall-clock time fires at most once:
//  - a local time that does not exist (spring forward) fires at the instant the gap ends (a job
//    at 02:30 on the night Europe/Berlin jumps 02:00→03:00 runs at 03:00 local);
//  - a local time that occurs twice (fall back) fires at its first occurrence only.

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace date {
class time_zone;
}

namespace faultline::schedule {

// A resolved IANA time zone. Cheap to copy; thread-safe.
class TimeZone {
 public:
  // INVALID_ARGUMENT naming the zone when the tz database does not know it.
  static Result<TimeZone> Load(std::string_view name);
  const std::string& name() const;

  struct Civil {
    int year, month, day;  // month 1-12, day 1-31
    int hour, minute;
    int weekday;  // 0 = Sunday
  };
  // The local wall-clock minute containing `unix_ms`.
  Civil ToLocal(int64_t unix_ms) const;

 private:
  explicit TimeZone(const date::time_zone* tz) : tz_(tz) {}
  friend class CronExpression;
  const date::time_zone* tz_;
};

class CronExpression {
 public:
  // INVALID_ARGUMENT naming the field and the offending text ("cron field 2 (hour): 24 is out
  // of range 0-23").
  static Result<CronExpression> Parse(std::string_view text);

  // The first instant strictly after `after_unix_ms` (whole minutes) at which this expression
  // fires in `tz`; nullopt when it never fires within the next 5 years (e.g. "0 0 30 2 *").
  std::optional<int64_t> NextAfter(int64_t after_unix_ms, const TimeZone& tz) const;

  // Whether a local civil minute matches.
  bool Matches(const TimeZone::Civil& t) const;

  const std::string& text() const { return text_; }

 private:
  CronExpression() = default;
  bool DayMatches(int year, int month, int day, int weekday) const;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1-31
  std::bitset<13> months_;   // 1-12
  std::bitset<7> weekdays_;  // 0-6, Sunday 0
  bool days_star_ = false;
  bool weekdays_star_ = false;
};

// A daily run window in local time: "HH:MM-HH:MM", start inclusive, end exclusive; it wraps
// midnight when end < start ("22:00-04:00"). Empty text: always open.
class RunWindow {
 public:
  // INVALID_ARGUMENT for malformed text or start == end.
  static Result<RunWindow> Parse(std::string_view text);
  bool Contains(int hour, int minute) const;

 private:
  int start_ = 0, end_ = 24 * 60;
};

// "YYYY-MM-DD" of a real calendar date; INVALID_ARGUMENT otherwise.
Status ValidateDate(std::string_view text);

}  // namespace faultline::schedule
