#include "common/duration.h"

#include <cctype>
#include <cstdint>

namespace faultline {

namespace {
constexpr int64_t kMaxNs = int64_t{7} * 24 * 3600 * 1'000'000'000;
}

Result<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty duration");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      return InvalidArgument("invalid duration '" + std::string(text) +
                             "': expected a number followed by ns, us, ms, s, m or h");
    }
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxNs) return InvalidArgument("duration '" + std::string(text) + "' is too long");
      ++i;
    }
    size_t u = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(u, i - u);
    int64_t mult;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us")
      mult = 1'000;
    else if (unit == "ms")
      mult = 1'000'000;
    else if (unit == "s")
      mult = 1'000'000'000;
    else if (unit == "m")
      mult = int64_t{60} * 1'000'000'000;
    else if (unit == "h")
      mult = int64_t{3600} * 1'000'000'000;
    else
      return InvalidArgument("invalid duration '" + std::string(text) +
                             "': unit must be one of ns, us, ms, s, m, h");
    if (n > kMaxNs / mult || total + n * mult > kMaxNs) {
      return InvalidArgument("duration '" + std::string(text) + "' exceeds the 7-day maximum");
    }
    total += n * mult;
  }
  return Duration(total);
}

std::string FormatDuration(Duration d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string out;
  if (ns < 0) {
    out = "-";
    ns = -ns;
  }
  if (ns % 1'000'000'000 != 0) {
    if (ns < 1'000'000'000) {
      if (ns % 1'000'000 == 0) return out + std::to_string(ns / 1'000'000) + "ms";
      if (ns % 1'000 == 0) return out + std::to_string(ns / 1'000) + "us";
      return out + std::to_string(ns) + "ns";
    }
    // Mixed seconds and sub-seconds: show milliseconds.
    return out + std::to_string(ns / 1'000'000) + "ms";
  }
  int64_t s = ns / 1'000'000'000;
  int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (sec) out += std::to_string(sec) + "s";
  return out;
}

}  // namespace faultline
