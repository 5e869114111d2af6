#include "agent/dns/dns_matcher.h"

#include <algorithm>

#include "common/dns_name.h"

namespace faultline::agent::dns {
std::string NormalizeDomainName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

Status ValidateDomainPattern(std::string_view pattern) {
  return ValidateDnsName(pattern, /*allow_wildcard=*/true);
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
  return MatchesNormalized(NormalizeDomainName(name));
}

bool DomainMatcher::MatchesNormalized(std::string_view n) const {
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
