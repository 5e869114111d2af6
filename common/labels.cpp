#include "common/labels.h"

namespace faultline {

bool IsLabelToken(std::string_view s) {
  if (s.empty() || s.size() > kMaxLabelTokenLength) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace faultline
