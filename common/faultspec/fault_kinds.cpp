#include "common/faultspec/fault_kinds.h"

#include "common/faultspec/dependency/dependency_fault.h"
#include "common/faultspec/dns/dns_fault.h"
#include "common/faultspec/network/network_fault.h"
#include "common/faultspec/process/process_fault.h"

namespace faultline::faultspec {
namespace {

using O = SpecValidationOptions;
using P = FieldProblems;
using S = v1::FaultSpec;

// clang-format off
constexpr FaultKind kKinds[] = {
    {"dns", S::kDns,
     [](const S& s, const O&, P* p) { ValidateDnsFault(s.dns(), "dns", p); },
     "queries_faulted", "DNS answers for matching names: drop, nxdomain, servfail, nodata, "
     "refused, spoof or delay"},
    {"network", S::kNetwork,
     [](const S& s, const O& o, P* p) {
       ValidateNetworkFault(s.network(), "network", {o.partition_peers_added_later}, p); },
     "packets_matched", "packets of the host: latency, loss, blackhole, reject, partition or "
     "bandwidth"},
    {"dependency", S::kDependency,
     [](const S& s, const O&, P* p) { ValidateDependencyFault(s.dependency(), "dependency", p); },
     "connections_affected", "TCP connections to a dependency through the fault proxy: toxics "
     "and HTTP aborts or delays"},
    {"process", S::kProcess,
     [](const S& s, const O&, P* p) { ValidateProcessFault(s.process(), "process", p); },
     "processes_signalled", "processes on the host: kill or pause"},
};
// clang-format on

}  // namespace

std::span<const FaultKind> FaultKinds() { return kKinds; }

const FaultKind* FindFaultKind(v1::FaultSpec::KindCase kind_case) {
  for (const FaultKind& k : kKinds) {
    if (k.kind_case == kind_case) return &k;
  }
  return nullptr;
}

const FaultKind* FindFaultKind(std::string_view name) {
  for (const FaultKind& k : kKinds) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string_view FaultKindName(const v1::FaultSpec& spec) {
  const FaultKind* k = FindFaultKind(spec.kind_case());
  return k == nullptr ? std::string_view() : k->name;
}

void ValidateFaultSpec(const v1::FaultSpec& spec, const SpecValidationOptions& options,
                       FieldProblems* problems) {
  const FaultKind* k = FindFaultKind(spec.kind_case());
  if (k == nullptr) {
    std::string names;
    for (const FaultKind& kind : kKinds)
      names += (names.empty() ? "" : ", ") + std::string(kind.name);
    problems->Add("", "a fault needs exactly one kind: " + names);
    return;
  }
  k->validate(spec, options, problems);
}

Status ValidateFaultSpec(const v1::FaultSpec& spec) {
  FieldProblems problems;
  ValidateFaultSpec(spec, SpecValidationOptions{}, &problems);
  return problems.ToStatus();
}

}  // namespace faultline::faultspec
