#pragma once
// Identifiers for runs and faults. They end up in nftables table names (faultline_<fault-id>),
// so their alphabet is deliberately narrow.

#include <string>
#include <string_view>

namespace faultline {

// 12 random lower-case hex digits.
std::string NewRunId();

// "<run_id>_<index>", e.g. "3fa9c2d1e0b4_0".
std::string MakeFaultId(std::string_view run_id, int index);

// [a-z0-9]{1,32}
bool IsValidRunId(std::string_view id);
// [a-z0-9_]{1,48}
bool IsValidFaultId(std::string_view id);

}  // namespace faultline
