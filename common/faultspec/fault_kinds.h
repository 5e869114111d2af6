#pragma once
// The fault kinds, listed once (DESIGN.md: "a new kind = its proto message, one folder per tier,
// one line in the kinds table"). Each line ties the kind's name (the FaultSpec oneof field's
// name, which is also the agent capability it needs) to its oneof case, its validation, the
// evidence counter that shows the fault took effect, and a description for people. The agent
// (the security boundary) and the experiment parser both validate through ValidateFaultSpec;
// the controller names kinds and reads "did the fault bite?" from this table.

#include <span>
#include <string>
#include <string_view>

#include "common/faultspec/field_problems.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

struct SpecValidationOptions {
  // See NetworkValidationOptions::partition_peers_added_later (experiment parser only).
  bool partition_peers_added_later = false;
};

struct FaultKind {
  std::string_view name;              // "dns": the FaultSpec oneof field's name
  v1::FaultSpec::KindCase kind_case;  // v1::FaultSpec::kDns
  // Adds the problems of spec's message of this kind (precondition: spec.kind_case() ==
  // kind_case); paths start with `name`.
  void (*validate)(const v1::FaultSpec& spec, const SpecValidationOptions& options,
                   FieldProblems* problems);
  // The evidence counter that is > 0 once the fault acted on something ("queries_faulted"); 0
  // after a fault with no observed impact means nothing reached the fault.
  std::string_view injected_evidence;
  std::string_view description;  // "DNS answers for matching names (drop, nxdomain, ...)"
};

// Every kind, in FaultSpec field order. Static; never empty.
std::span<const FaultKind> FaultKinds();

// The kind for a oneof case or a name; nullptr when there is none (KIND_NOT_SET, an unknown
// name). Pure.
const FaultKind* FindFaultKind(v1::FaultSpec::KindCase kind_case);
const FaultKind* FindFaultKind(std::string_view name);

// The kind's name for `spec` ("dns"), or "" when no kind is set or the kind is not in the table.
std::string_view FaultKindName(const v1::FaultSpec& spec);

// Adds every problem of `spec`: a spec without a (known) kind is one problem at field "";
// otherwise the kind's own validation. Pure; thread-safe.
void ValidateFaultSpec(const v1::FaultSpec& spec, const SpecValidationOptions& options,
                       FieldProblems* problems);

// OK, or INVALID_ARGUMENT naming the first problem ("dns.domains[3]: ..."). What the agent calls
// on every request. Pure; thread-safe.
Status ValidateFaultSpec(const v1::FaultSpec& spec);

}  // namespace faultline::faultspec
