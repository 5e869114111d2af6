#pragma once
// Workload selectors (v1::WorkloadSelector): which containers, pods or runtime-free handles on an
// agent a fault acts in. The rules and bounds are defined once here; the experiment parser
// (`targets.X.workloads`) and the agent (ApplyFault.workload, ListWorkloads) both call it.
// Kernel-free and pure.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/faultspec/field_problems.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

// Bounds of a selector (hostile callers cannot make the agent allocate or query without bound).
inline constexpr size_t kMaxWorkloadLabels = 16;
inline constexpr size_t kMaxWorkloadNames = 64;
inline constexpr size_t kMaxWorkloadIds = 64;
inline constexpr size_t kMaxWorkloadLabelKeyLength = 253;
inline constexpr size_t kMaxWorkloadLabelValueLength = 255;
inline constexpr size_t kMaxWorkloadNameLength = 253;
inline constexpr size_t kMaxWorkloadIdLength = 128;
inline constexpr size_t kMaxWorkloadPathLength = 512;
inline constexpr uint32_t kMaxWorkloadPid = 4194304;  // Linux's PID_MAX_LIMIT
// Most workloads one ListWorkloads answer carries (and one target group may pick per agent).
inline constexpr size_t kMaxWorkloadsPerAgent = 256;
// The cgroup v2 mount every cgroup_path lies below.
inline constexpr std::string_view kCgroupRoot = "/sys/fs/cgroup";

// True when `s` is set at all (any field): a fault with an unset selector acts on the host.
bool WorkloadSelectorIsSet(const v1::WorkloadSelector& s);

// True when `s` is a runtime-free handle (netns_path, cgroup_path or pid).
bool WorkloadSelectorIsHandle(const v1::WorkloadSelector& s);

// Adds every problem of `s`; field paths start with `prefix` ("workload" → "workload.labels").
// Rules: exactly one form. Runtime form: runtime DOCKER, CRI or ANY with at least one of labels,
// names, ids (pod_namespace only with CRI or ANY); label keys 1-253 of [A-Za-z0-9._/-], values
// 0-255 printable ASCII without spaces; names 1-253 of [A-Za-z0-9._-]; ids 1-128 of
// [A-Za-z0-9._-]; pod_namespace a DNS label (1-63 of [a-z0-9-], no leading/trailing '-').
// Handle form: runtime unset and exactly one of netns_path (absolute, no "." or ".."
// components, no control characters, at most 512), cgroup_path (below /sys/fs/cgroup, the rest
// as ValidateCgroupPath), pid (2..4194304). An unset selector is a problem at `prefix`.
void ValidateWorkloadSelector(const v1::WorkloadSelector& s, const std::string& prefix,
                              FieldProblems* problems);

// OK or INVALID_ARGUMENT naming the first problem. What the agent calls on every request.
Status ValidateWorkloadSelector(const v1::WorkloadSelector& s);

// "docker", "cri", "any" or "" for RUNTIME_UNSPECIFIED.
std::string_view WorkloadRuntimeName(v1::WorkloadSelector::Runtime r);

}  // namespace faultline::faultspec
