#include "controller/experiment/experiment.h"

#include <algorithm>
#include <cmath>

namespace faultline::experiment {

const Probe* Experiment::FindProbe(const std::string& name) const {
  for (const Probe& p : probes) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const Target* Experiment::FindTarget(const std::string& name) const {
  for (const Target& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::optional<CompareOp> ParseCompareOp(std::string_view op) {
  if (op == "<") return CompareOp::kLt;
  if (op == "<=") return CompareOp::kLe;
  if (op == ">") return CompareOp::kGt;
  if (op == ">=") return CompareOp::kGe;
  if (op == "==") return CompareOp::kEq;
  if (op == "!=") return CompareOp::kNe;
  return std::nullopt;
}

const char* CompareOpName(CompareOp op) {
  switch (op) {
    case CompareOp::kLt:
      return "<";
    case CompareOp::kLe:
      return "<=";
    case CompareOp::kGt:
      return ">";
    case CompareOp::kGe:
      return ">=";
    case CompareOp::kEq:
      return "==";
    case CompareOp::kNe:
      return "!=";
  }
  return "?";
}

int MinLatencySamples(double percentile) {
  if (!(percentile > 0 && percentile < 100)) return 1;
  // The tolerance keeps 99.9 (stored as 99.900000000000006) at 1000, not 1001.
  double n = std::ceil(100.0 / (100.0 - percentile) - 1e-6);
  return static_cast<int>(std::clamp(n, 1.0, 1e9));
}

const char* ObjectiveKindName(Objective::Kind kind) {
  switch (kind) {
    case Objective::Kind::kRecover:
      return "recover_within";
    case Objective::Kind::kDetect:
      return "detect_within";
    case Objective::Kind::kAvailability:
      return "availability";
    case Objective::Kind::kLatency:
      return "latency";
  }
  return "recover_within";
}

}  // namespace faultline::experiment
