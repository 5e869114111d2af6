#include "common/faultspec/field_problems.h"

namespace faultline::faultspec {

std::string FieldProblem::ToString() const {
  return field.empty() ? message : field + ": " + message;
}

void FieldProblems::Add(std::string field, std::string message) {
  if (problems_.size() >= kMaxKept) {
    ++dropped_;
    return;
  }
  problems_.push_back({std::move(field), std::move(message)});
}

Status FieldProblems::ToStatus() const {
  if (problems_.empty()) return Status::Ok();
  return InvalidArgument(problems_.front().ToString());
}

std::string Indexed(const std::string& path, int i) { return path + "[" + std::to_string(i) + "]"; }

}  // namespace faultline::faultspec
