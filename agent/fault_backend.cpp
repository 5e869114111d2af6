#include "agent/fault_backend.h"

#include <google/protobuf/descriptor.h>

namespace faultline::agent {

std::string FaultKindOf(const v1::FaultSpec& spec) {
  if (spec.kind_case() == v1::FaultSpec::KIND_NOT_SET) return "";
  // The oneof field's name is the kind, so a new FaultSpec case needs no change here.
  const google::protobuf::FieldDescriptor* field =
      v1::FaultSpec::descriptor()->FindFieldByNumber(static_cast<int>(spec.kind_case()));
  return field == nullptr ? "" : field->name();
}

}  // namespace faultline::agent

namespace faultline::agent {

Result<std::unique_ptr<FaultHandle>> FaultBackend::ApplyInWorkload(const std::string&,
                                                                   const v1::FaultSpec&,
                                                                   const workloads::Workload&) {
  return FailedPrecondition(Kind() + ": this fault kind cannot target a workload");
}

Status FaultBackend::RevertOrphanInWorkload(const std::string&, const v1::FaultSpec&,
                                            const workloads::Workload&) {
  return FailedPrecondition(Kind() + ": this fault kind cannot target a workload");
}

}  // namespace faultline::agent
