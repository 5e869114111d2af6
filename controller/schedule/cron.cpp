#include "controller/schedule/cron.h"

#include <date/tz.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <exception>
#include <vector>

namespace faultline::schedule {

namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

struct FieldSpec {
  const char* name;
  int lo, hi;
  const char* const* names;  // nullptr, or names for lo, lo+1, ...
  int name_count;
};

const char* const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0},       {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0}, {"month", 1, 12, kMonthNames, 12},
    {"day-of-week", 0, 7, kDayNames, 7},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status FieldError(int index, const std::string& what) {
  return InvalidArgument("cron field " + std::to_string(index + 1) + " (" + kFields[index].name +
                         "): " + what);
}

Result<int> ParseValue(int index, std::string_view text) {
  const FieldSpec& f = kFields[index];
  if (f.names != nullptr) {
    std::string lower = Lower(text);
    for (int i = 0; i < f.name_count; ++i) {
      if (lower == f.names[i]) return f.lo + i;
    }
  }
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return FieldError(
        index, "'" + std::string(text) + "' is not a number" + (f.names ? " or a name" : ""));
  }
  if (v < f.lo || v > f.hi) {
    return FieldError(index, std::to_string(v) + " is out of range " + std::to_string(f.lo) + "-" +
                                 std::to_string(f.hi));
  }
  return v;
}

// Sets bits lo..hi of the field in `mask`; `star` tells whether the field starts with '*'.
Status ParseField(int index, std::string_view text, uint64_t* mask, bool* star) {
  const FieldSpec& f = kFields[index];
  *mask = 0;
  *star = !text.empty() && text[0] == '*';
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) return FieldError(index, "empty list item in '" + std::string(text) + "'");
    int step = 1;
    bool has_step = false;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      std::string_view s = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || step <= 0) {
        return FieldError(index, "step '" + std::string(s) + "' must be a positive number");
      }
      item = item.substr(0, slash);
      has_step = true;
    }
    int lo, hi;
    if (item == "*") {
      lo = f.lo;
      hi = f.hi;
    } else if (size_t dash = item.find('-'); dash != std::string_view::npos) {
      auto a = ParseValue(index, item.substr(0, dash));
      if (!a.ok()) return a.status();
      auto b = ParseValue(index, item.substr(dash + 1));
      if (!b.ok()) return b.status();
      if (*a > *b) {
        return FieldError(index, "range '" + std::string(item) + "' runs backwards");
      }
      lo = *a;
      hi = *b;
    } else {
      auto a = ParseValue(index, item);
      if (!a.ok()) return a.status();
      lo = *a;
      // "5/20" means 5-max/20 (cronie); a plain "5" is just 5.
      hi = has_step ? f.hi : *a;
    }
    for (int v = lo; v <= hi; v += step) *mask |= uint64_t{1} << v;
  }
  return Status::Ok();
}

const date::time_zone* FindZone(std::string_view name) {
  try {
    return date::locate_zone(std::string(name));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name.empty()) return InvalidArgument("empty time zone");
  const date::time_zone* tz = FindZone(name);
  if (tz == nullptr) {
    return InvalidArgument("unknown time zone '" + std::string(name) +
                           "' (an IANA name such as UTC, Europe/Berlin, America/New_York)");
  }
  return TimeZone(tz);
}

const std::string& TimeZone::name() const { return tz_->name(); }

TimeZone::Civil TimeZone::ToLocal(int64_t unix_ms) const {
  auto local = tz_->to_local(date::sys_time<milliseconds>(milliseconds(unix_ms)));
  auto minute = date::floor<minutes>(local);
  auto day = date::floor<date::days>(minute);
  date::year_month_day ymd(day);
  auto since = minute - day;
  return Civil{static_cast<int>(ymd.year()),
               static_cast<int>(static_cast<unsigned>(ymd.month())),
               static_cast<int>(static_cast<unsigned>(ymd.day())),
               static_cast<int>(since.count() / 60),
               static_cast<int>(since.count() % 60),
               static_cast<int>(date::weekday(day).c_encoding())};
}

Result<CronExpression> CronExpression::Parse(std::string_view text) {
  static const std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  CronExpression e;
  e.text_ = std::string(text);
  std::string expanded(text);
  if (!text.empty() && text[0] == '@') {
    std::string lower = Lower(text);
    bool known = false;
    for (const auto& [macro, fields] : kMacros) {
      if (lower == macro) {
        expanded = fields;
        known = true;
      }
    }
    if (!known) {
      return InvalidArgument("unknown cron macro '" + std::string(text) +
                             "' (@yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                             "@hourly)");
    }
  }
  std::vector<std::string> fields;
  size_t pos = 0;
  while (pos < expanded.size()) {
    size_t start = expanded.find_first_not_of(" \t", pos);
    if (start == std::string::npos) break;
    size_t end = expanded.find_first_of(" \t", start);
    fields.push_back(expanded.substr(start, end == std::string::npos ? end : end - start));
    pos = end == std::string::npos ? expanded.size() : end;
  }
  if (fields.size() != 5) {
    return InvalidArgument("cron expression '" + std::string(text) + "' has " +
                           std::to_string(fields.size()) +
                           " fields; expected 5 (minute hour day-of-month month day-of-week) "
                           "or a macro such as @daily");
  }
  uint64_t masks[5];
  bool stars[5];
  for (int i = 0; i < 5; ++i) {
    if (auto s = ParseField(i, fields[i], &masks[i], &stars[i]); !s.ok()) return s;
  }
  e.minutes_ = std::bitset<60>(masks[0]);
  e.hours_ = std::bitset<24>(masks[1]);
  e.days_ = std::bitset<32>(masks[2]);
  e.months_ = std::bitset<13>(masks[3]);
  uint64_t dow = masks[4];
  if (dow & (uint64_t{1} << 7)) dow |= 1;  // 7 is Sunday too
  e.weekdays_ = std::bitset<7>(dow & 0x7f);
  e.days_star_ = stars[2];
  e.weekdays_star_ = stars[4];
  return e;
}

bool CronExpression::DayMatches(int year, int month, int day, int weekday) const {
  bool dom = days_[day];
  bool dow = weekdays_[weekday];
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

bool CronExpression::Matches(const TimeZone::Civil& t) const {
  return minutes_[t.minute] && hours_[t.hour] && months_[t.month] &&
         DayMatches(t.year, t.month, t.day, t.weekday);
}

std::optional<int64_t> CronExpression::NextAfter(int64_t after_unix_ms,
                                                 const TimeZone& zone) const {
  const date::time_zone* tz = zone.tz_;
  auto after = date::sys_time<milliseconds>(milliseconds(after_unix_ms));
  auto first = date::floor<minutes>(after) + minutes(1);
  // Walk local wall-clock minutes, skipping whole months, days and hours that cannot match.
  date::local_time<minutes> t = date::floor<minutes>(tz->to_local(first));
  const auto limit = t + date::days(5 * 366);
  while (t < limit) {
    auto day = date::floor<date::days>(t);
    date::year_month_day ymd(day);
    unsigned month = static_cast<unsigned>(ymd.month());
    if (!months_[month]) {
      auto ym = ymd.year() / ymd.month() + date::months(1);
      t = date::local_days(ym / 1);
      continue;
    }
    if (!DayMatches(static_cast<int>(ymd.year()), static_cast<int>(month),
                    static_cast<int>(static_cast<unsigned>(ymd.day())),
                    static_cast<int>(date::weekday(day).c_encoding()))) {
      t = day + date::days(1);
      continue;
    }
    auto since = (t - day).count();
    int hour = static_cast<int>(since / 60);
    if (!hours_[hour]) {
      t = day + std::chrono::hours(hour + 1);
      continue;
    }
    if (!minutes_[since % 60]) {
      t += minutes(1);
      continue;
    }
    date::local_info info = tz->get_info(date::local_seconds(t));
    date::sys_seconds at;
    if (info.result == date::local_info::nonexistent) {
      at = info.first.end;  // the gap's end: the first instant the clock shows a later time
    } else {                // unique, or ambiguous: its first occurrence
      at = date::sys_seconds(t.time_since_epoch() - info.first.offset);
    }
    if (at > after) return date::floor<milliseconds>(at).time_since_epoch().count();
    t += minutes(1);
  }
  return std::nullopt;
}

Result<RunWindow> RunWindow::Parse(std::string_view text) {
  RunWindow w;
  if (text.empty()) return w;
  int h1, m1, h2, m2;
  char tail;
  std::string s(text);
  auto bad = [&] {
    return InvalidArgument("run window '" + s + "' must be HH:MM-HH:MM in local time, e.g. " +
                           "09:00-17:00 (or 22:00-04:00 across midnight)");
  };
  if (std::sscanf(s.c_str(), "%2d:%2d-%2d:%2d%c", &h1, &m1, &h2, &m2, &tail) != 4) return bad();
  if (s.size() != 11 || h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || (h2 == 24 && m2 != 0) ||
      h1 < 0 || m1 < 0 || h2 < 0 || m2 < 0) {
    return bad();
  }
  w.start_ = h1 * 60 + m1;
  w.end_ = h2 * 60 + m2;
  if (w.start_ == w.end_) {
    return InvalidArgument("run window '" + s + "' is empty (start equals end)");
  }
  return w;
}

bool RunWindow::Contains(int hour, int minute) const {
  int m = hour * 60 + minute;
  if (start_ < end_) return m >= start_ && m < end_;
  return m >= start_ || m < end_;  // wraps midnight
}

Status ValidateDate(std::string_view text) {
  int y, m, d;
  char tail;
  std::string s(text);
  if (s.size() != 10 || std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
      !date::year_month_day(date::year(y), date::month(m), date::day(d)).ok()) {
    return InvalidArgument("'" + s + "' is not a date of the form YYYY-MM-DD");
  }
  return Status::Ok();
}

}  // namespace faultline::schedule
