#include "controller/experiment/experiment.h"

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

}  // namespace faultline::experiment
