#pragma once
// What a fault specification's validation found: each problem names the proto field it concerns
// by its path ("dns.domains[3]", "dependency.toxics[0].latency.jitter_us"), so a caller that
// built the proto from another source (the experiment parser, from YAML) can point its own
// diagnostic at the place that field came from.

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace faultline::faultspec {

// One problem: `field` is the path of the offending proto field from the FaultSpec's oneof
// ("dns.domains[3]"; a repeated field's index in brackets, nested messages joined with '.');
// `message` says what is wrong and what is accepted, without repeating the path.
struct FieldProblem {
  std::string field;
  std::string message;

  // "field: message".
  std::string ToString() const;
};

// Collects the problems of one validation. Not thread-safe (one per validation call).
class FieldProblems {
 public:
  // At most this many problems are kept; further ones are counted in dropped() only, so hostile
  // input cannot make validation allocate without bound.
  static constexpr size_t kMaxKept = 64;

  void Add(std::string field, std::string message);

  bool ok() const { return problems_.empty(); }
  const std::vector<FieldProblem>& problems() const { return problems_; }
  size_t dropped() const { return dropped_; }

  // OK when there is no problem; otherwise INVALID_ARGUMENT with the first problem's
  // "field: message" (the agent's answer names the first thing to fix).
  Status ToStatus() const;

 private:
  std::vector<FieldProblem> problems_;
  size_t dropped_ = 0;
};

// "path[i]".
std::string Indexed(const std::string& path, int i);

}  // namespace faultline::faultspec
