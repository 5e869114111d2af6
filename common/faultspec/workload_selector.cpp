#include "common/faultspec/workload_selector.h"

#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {
namespace {

bool AllOf(std::string_view s, bool (*ok)(char)) {
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}

bool AlnumAscii(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool NameChar(char c) { return AlnumAscii(c) || c == '.' || c == '_' || c == '-'; }
bool LabelKeyChar(char c) { return NameChar(c) || c == '/'; }
bool LabelValueChar(char c) { return c > 0x20 && c < 0x7f; }
bool DnsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// Absolute, no "." / ".." / empty components (a trailing '/' excepted), no control bytes.
bool CleanAbsolutePath(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > kMaxWorkloadPathLength) return false;
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  size_t i = 1;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view comp = p.substr(i, j - i);
    if (comp == "." || comp == ".." || (comp.empty() && j != p.size())) return false;
    i = j + 1;
  }
  return true;
}

}  // namespace

std::string_view WorkloadRuntimeName(v1::WorkloadSelector::Runtime r) {
  switch (r) {
    case v1::WorkloadSelector::DOCKER:
      return "docker";
    case v1::WorkloadSelector::CRI:
      return "cri";
    case v1::WorkloadSelector::ANY:
      return "any";
    default:
      return "";
  }
}

bool WorkloadSelectorIsHandle(const v1::WorkloadSelector& s) {
  return !s.netns_path().empty() || !s.cgroup_path().empty() || s.pid() != 0;
}

bool WorkloadSelectorIsSet(const v1::WorkloadSelector& s) {
  return s.runtime() != v1::WorkloadSelector::RUNTIME_UNSPECIFIED || !s.labels().empty() ||
         !s.names().empty() || !s.ids().empty() || !s.pod_namespace().empty() ||
         WorkloadSelectorIsHandle(s);
}

void ValidateWorkloadSelector(const v1::WorkloadSelector& s, const std::string& prefix,
                              FieldProblems* problems) {
  auto field = [&](std::string_view name) { return prefix + "." + std::string(name); };
  const int handles =
      (s.netns_path().empty() ? 0 : 1) + (s.cgroup_path().empty() ? 0 : 1) + (s.pid() != 0 ? 1 : 0);
  const bool runtime_set = s.runtime() != v1::WorkloadSelector::RUNTIME_UNSPECIFIED;
  const bool by_runtime = !s.labels().empty() || !s.names().empty() || !s.ids().empty();
  if (!WorkloadSelectorIsSet(s)) {
    problems->Add(prefix,
                  "select workloads by runtime (labels, names or ids) or by one handle (netns, "
                  "cgroup or pid)");
    return;
  }
  if (s.runtime() != v1::WorkloadSelector::RUNTIME_UNSPECIFIED &&
      s.runtime() != v1::WorkloadSelector::DOCKER && s.runtime() != v1::WorkloadSelector::CRI &&
      s.runtime() != v1::WorkloadSelector::ANY) {
    problems->Add(field("runtime"), "must be docker, cri or any");
  }
  if (handles > 0) {
    if (handles > 1) {
      problems->Add(prefix, "give exactly one handle: netns, cgroup or pid");
    }
    if (runtime_set || by_runtime || !s.pod_namespace().empty()) {
      problems->Add(prefix,
                    "a handle (netns, cgroup or pid) cannot be combined with runtime, labels, "
                    "names, ids or namespace");
    }
  } else {
    if (!runtime_set) {
      problems->Add(field("runtime"), "required with labels, names or ids: docker, cri or any");
    }
    if (!by_runtime) {
      problems->Add(prefix, "a runtime selector needs at least one of labels, names or ids");
    }
    if (!s.pod_namespace().empty() && s.runtime() == v1::WorkloadSelector::DOCKER) {
      problems->Add(field("pod_namespace"),
                    "a Kubernetes namespace needs runtime cri or any (docker has no pods)");
    }
  }
  if (s.labels_size() > static_cast<int>(kMaxWorkloadLabels)) {
    problems->Add(field("labels"), "at most " + std::to_string(kMaxWorkloadLabels) +
                                       " labels, got " + std::to_string(s.labels_size()));
  }
  for (const auto& [k, v] : s.labels()) {
    if (k.empty() || k.size() > kMaxWorkloadLabelKeyLength || !AllOf(k, LabelKeyChar)) {
      problems->Add(field("labels"),
                    "label key must be 1-253 characters of A-Z, a-z, 0-9, '.', '_', '-' and '/'");
    } else if (v.size() > kMaxWorkloadLabelValueLength || !AllOf(v, LabelValueChar)) {
      problems->Add(field("labels"), "value of label " + k +
                                         " must be at most 255 printable ASCII characters "
                                         "without spaces");
    }
  }
  if (s.names_size() > static_cast<int>(kMaxWorkloadNames)) {
    problems->Add(field("names"), "at most " + std::to_string(kMaxWorkloadNames) + " names");
  }
  for (int i = 0; i < s.names_size() && i < static_cast<int>(kMaxWorkloadNames); ++i) {
    const std::string& n = s.names(i);
    if (n.empty() || n.size() > kMaxWorkloadNameLength || !AllOf(n, NameChar)) {
      problems->Add(Indexed(field("names"), i),
                    "must be 1-253 characters of A-Z, a-z, 0-9, '.', '_' and '-'");
    }
  }
  if (s.ids_size() > static_cast<int>(kMaxWorkloadIds)) {
    problems->Add(field("ids"), "at most " + std::to_string(kMaxWorkloadIds) + " ids");
  }
  for (int i = 0; i < s.ids_size() && i < static_cast<int>(kMaxWorkloadIds); ++i) {
    const std::string& n = s.ids(i);
    if (n.empty() || n.size() > kMaxWorkloadIdLength || !AllOf(n, NameChar)) {
      problems->Add(Indexed(field("ids"), i),
                    "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-'");
    }
  }
  if (const std::string& ns = s.pod_namespace(); !ns.empty()) {
    if (ns.size() > 63 || !AllOf(ns, DnsLabelChar) || ns.front() == '-' || ns.back() == '-') {
      problems->Add(field("pod_namespace"),
                    "must be a Kubernetes namespace: 1-63 of a-z, 0-9 and '-', not starting or "
                    "ending with '-'");
    }
  }
  if (!s.netns_path().empty() && !CleanAbsolutePath(s.netns_path())) {
    problems->Add(field("netns_path"),
                  "must be an absolute path (at most 512 characters, no '.' or '..' components): "
                  "/run/netns/NAME or /proc/PID/ns/net");
  }
  if (const std::string& cg = s.cgroup_path(); !cg.empty()) {
    std::string_view v(cg);
    const bool below = v.size() > kCgroupRoot.size() + 1 && v.starts_with(kCgroupRoot) &&
                       v[kCgroupRoot.size()] == '/';
    if (!below || !CleanAbsolutePath(v)) {
      problems->Add(field("cgroup_path"),
                    "must be a cgroup v2 directory below /sys/fs/cgroup, e.g. "
                    "/sys/fs/cgroup/system.slice/orders.service");
    } else if (Status st = ValidateCgroupPath(std::string(v.substr(kCgroupRoot.size() + 1)));
               !st.ok()) {
      problems->Add(field("cgroup_path"), st.message());
    }
  }
  if (s.pid() == 1 || s.pid() > kMaxWorkloadPid) {
    problems->Add(field("pid"), "must be a process id from 2 to 4194304");
  }
}

Status ValidateWorkloadSelector(const v1::WorkloadSelector& s) {
  FieldProblems problems;
  ValidateWorkloadSelector(s, "workload", &problems);
  return problems.ToStatus();
}

}  // namespace faultline::faultspec
