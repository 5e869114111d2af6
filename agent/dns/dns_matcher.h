#pragma once
// Domain patterns of a DNS fault: exact names ("db.example.com") and wildcards ("*.example.com",
// which match strict subdomains only, never "example.com" itself); or, in suffix mode, suffixes
// ("example.com" matches example.com and every subdomain). Matching is case-insensitive and
// ignores one trailing dot, on both the pattern and the queried name.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace faultline::agent::dns {

// Lower-cases a name and strips one trailing dot ("Db.Example.COM." -> "db.example.com").
std::string NormalizeDomainName(std::string_view name);

// Checks a pattern against RFC 1035 limits: at most 253 characters (without the trailing dot),
// labels of 1..63 characters from [A-Za-z0-9_-], and '*' only as the whole first label of a
// pattern with at least one more label. OK or INVALID_ARGUMENT with a message saying what is wrong.
Status ValidateDomainPattern(std::string_view pattern);

// An immutable set of patterns. Thread-safe (const after construction).
class DomainMatcher {
 public:
  // Builds a matcher; INVALID_ARGUMENT naming the first invalid pattern (by index). With
  // `suffix`, every pattern is a suffix (a leading "*." is then redundant and accepted).
  static Result<DomainMatcher> Create(const std::vector<std::string>& patterns,
                                      bool suffix = false);

  // True when the queried name matches any pattern. Any case, trailing dot allowed.
  bool Matches(std::string_view name) const;
  // The same for a name already normalised (NormalizeDomainName); allocates nothing.
  bool MatchesNormalized(std::string_view name) const;

  // The normalised patterns, in the order given.
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  DomainMatcher() = default;
  std::vector<std::string> patterns_;
  std::vector<std::string> exact_;     // normalised exact names
  std::vector<std::string> suffixes_;  // ".example.com" for "*.example.com"
};

}  // namespace faultline::agent::dns
