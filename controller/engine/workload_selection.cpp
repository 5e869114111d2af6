#include "controller/engine/workload_selection.h"

#include <algorithm>
#include <tuple>

namespace faultline::engine {

Result<size_t> ModeCount(const experiment::TargetMode& mode, size_t matched) {
  if (matched == 0) return FailedPrecondition("nothing matches");
  using K = experiment::TargetMode::Kind;
  switch (mode.kind) {
    case K::kAll:
      return matched;
    case K::kOne:
      return size_t{1};
    case K::kFixed:
      if (mode.value <= 0 || static_cast<size_t>(mode.value) > matched) {
        return FailedPrecondition("fixed:" + std::to_string(mode.value) +
                                  " asks for more than match (" + std::to_string(matched) + ")");
      }
      return static_cast<size_t>(mode.value);
    case K::kPercent:
      return std::max<size_t>(1,
                              matched * static_cast<size_t>(std::clamp(mode.value, 0, 100)) / 100);
  }
  return matched;
}

Result<std::vector<WorkloadTarget>> PickWorkloads(std::vector<WorkloadTarget> matched,
                                                  const experiment::TargetMode& mode,
                                                  std::mt19937& rng) {
  if (matched.empty()) return FailedPrecondition("no workload matches");
  auto n = ModeCount(mode, matched.size());
  if (!n.ok()) return n.status();
  auto key = [](const WorkloadTarget& t) {
    return std::tie(t.agent, t.workload.runtime(), t.workload.id());
  };
  // Sort first so the pick depends only on what matched and the rng, not on answer order.
  std::sort(matched.begin(), matched.end(),
            [&](const WorkloadTarget& a, const WorkloadTarget& b) { return key(a) < key(b); });
  std::shuffle(matched.begin(), matched.end(), rng);
  matched.resize(*n);
  std::sort(matched.begin(), matched.end(),
            [&](const WorkloadTarget& a, const WorkloadTarget& b) { return key(a) < key(b); });
  return matched;
}

std::string DescribeWorkload(const WorkloadTarget& t) {
  const v1::Workload& w = t.workload;
  std::string s = w.kind() + " ";
  if (!w.pod_namespace().empty()) s += w.pod_namespace() + "/";
  s += w.name();
  if (!w.runtime().empty()) s += " (" + w.runtime() + " " + w.id().substr(0, 12) + ")";
  return s + " on " + t.agent;
}

v1::WorkloadSelector SelectorFor(const v1::Workload& w) {
  v1::WorkloadSelector s;
  if (w.kind() == "netns") {
    s.set_netns_path(w.netns_path());
  } else if (w.kind() == "cgroup") {
    s.set_cgroup_path(w.cgroup_path());
  } else if (w.kind() == "pid") {
    s.set_pid(w.pids_size() > 0 ? w.pids(0) : 0);
  } else {
    s.set_runtime(w.runtime() == "cri" ? v1::WorkloadSelector::CRI : v1::WorkloadSelector::DOCKER);
    s.add_ids(w.id());
  }
  return s;
}

}  // namespace faultline::engine
