#include "agent/dns/dns_matcher.h"

#include <algorithm>

namespace faultline::agent::dns {
namespace {

constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelLength = 63;

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::string NormalizeDomainName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

Status ValidateDomainPattern(std::string_view pattern) {
  std::string quoted = "'" + std::string(pattern) + "'";
  if (!pattern.empty() && pattern.back() == '.') pattern.remove_suffix(1);
  if (pattern.empty()) return InvalidArgument("domain pattern is empty");
  if (pattern.size() > kMaxNameLength) {
    return InvalidArgument("domain " + quoted + " is longer than 253 characters");
  }
  size_t start = 0;
  int index = 0;
  while (true) {
    size_t dot = pattern.find('.', start);
    std::string_view label =
        pattern.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return InvalidArgument("domain " + quoted + " has an empty label");
    if (label.size() > kMaxLabelLength) {
      return InvalidArgument("domain " + quoted + " has a label longer than 63 characters");
    }
    if (label == "*") {
      if (index != 0) {
        return InvalidArgument("domain " + quoted + ": '*' is allowed only as the first label");
      }
      if (dot == std::string_view::npos) {
        return InvalidArgument("domain " + quoted +
                               ": a wildcard needs a suffix, e.g. '*.example.com'");
      }
    } else {
      for (char c : label) {
        if (!IsLabelChar(c)) {
          return InvalidArgument("domain " + quoted + " has invalid character '" +
                                 std::string(1, c) +
                                 "' (allowed: letters, digits, '-', '_', and a leading '*.')");
        }
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
    ++index;
  }
  return Status::Ok();
}

Result<DomainMatcher> DomainMatcher::Create(const std::vector<std::string>& patterns, bool suffix) {
  DomainMatcher m;
  for (size_t i = 0; i < patterns.size(); ++i) {
    Status s = ValidateDomainPattern(patterns[i]);
    if (!s.ok()) return InvalidArgument("domains[" + std::to_string(i) + "]: " + s.message());
    std::string p = NormalizeDomainName(patterns[i]);
    if (p.starts_with("*.")) {
      m.suffixes_.push_back(p.substr(1));
      if (suffix) m.exact_.push_back(p.substr(2));
    } else if (suffix) {
      m.exact_.push_back(p);
      m.suffixes_.push_back("." + p);
    } else {
      m.exact_.push_back(p);
    }
    m.patterns_.push_back(std::move(p));
  }
  return m;
}

bool DomainMatcher::Matches(std::string_view name) const {
  std::string n = NormalizeDomainName(name);
  for (const auto& e : exact_) {
    if (n == e) return true;
  }
  // The suffix keeps its leading dot, so "example.com" never matches "*.example.com" and
  // "badexample.com" never matches either.
  for (const auto& s : suffixes_) {
    if (n.size() > s.size() && n.ends_with(s)) return true;
  }
  return false;
}

}  // namespace faultline::agent::dns
