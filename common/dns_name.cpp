#include "common/dns_name.h"

#include <string>

namespace faultline {

namespace {

constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelLength = 63;

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

Status ValidateDnsName(std::string_view name, bool allow_wildcard) {
  std::string quoted = "'" + std::string(name) + "'";
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return InvalidArgument("domain name is empty");
  if (name.size() > kMaxNameLength) {
    return InvalidArgument("domain " + quoted + " is longer than 253 characters");
  }
  size_t start = 0;
  int index = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return InvalidArgument("domain " + quoted + " has an empty label");
    if (label.size() > kMaxLabelLength) {
      return InvalidArgument("domain " + quoted + " has a label longer than 63 characters");
    }
    if (label == "*") {
      if (!allow_wildcard) {
        return InvalidArgument("domain " + quoted + ": wildcards are not allowed here");
      }
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
                                 std::string(1, c) + "' (allowed: letters, digits, '-', '_'" +
                                 (allow_wildcard ? ", and a leading '*.')" : ")"));
        }
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
    ++index;
  }
  return Status::Ok();
}

}  // namespace faultline
