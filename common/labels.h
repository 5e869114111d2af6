#pragma once
// Label keys and values (experiment metadata and selectors, agent --label flags) and agent ids:
// one alphabet, checked in one place.

#include <string_view>

namespace faultline {

// Longest label key or value.
inline constexpr size_t kMaxLabelTokenLength = 63;

// The rule IsLabelToken checks, worded for error messages ("label 'x' " + kLabelTokenRule).
inline constexpr char kLabelTokenRule[] =
    "must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' and '-'";

// True when `s` matches [A-Za-z0-9._-]{1,63} (ASCII only, whatever the locale). Pure.
bool IsLabelToken(std::string_view s);

}  // namespace faultline
