#pragma once
// DNS name syntax, checked the same way wherever a name enters Faultline: experiment files
// (fault domains, probe hosts) and the agent's requests (before a name reaches the interceptor or
// an nft rule).

#include <string_view>

#include "common/status.h"

namespace faultline {

// OK when `name` is a DNS name: at most 253 characters (one trailing dot ignored), labels of 1 to
// 63 characters from letters, digits, '-' and '_'. With `allow_wildcard`, the whole first label
// may be "*" ("*.example.com"; a bare "*" is refused). Otherwise INVALID_ARGUMENT whose message
// quotes the name and says what is wrong. Pure.
Status ValidateDnsName(std::string_view name, bool allow_wildcard);

}  // namespace faultline
