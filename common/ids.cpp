#include "common/ids.h"

#include <random>

namespace faultline {

std::string NewRunId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(12, '0');
  uint64_t r = rng();
  for (char& c : id) {
    c = kHex[r & 0xf];
    r >>= 4;
  }
  return id;
}

std::string MakeFaultId(std::string_view run_id, int index) {
  return std::string(run_id) + "_" + std::to_string(index);
}

namespace {
bool AllOf(std::string_view s, size_t max, bool allow_underscore) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (allow_underscore && c == '_');
    if (!ok) return false;
  }
  return true;
}
}  // namespace

bool IsValidRunId(std::string_view id) { return AllOf(id, 32, false); }
bool IsValidFaultId(std::string_view id) { return AllOf(id, 48, true); }

}  // namespace faultline
