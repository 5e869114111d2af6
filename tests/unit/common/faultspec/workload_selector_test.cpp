#include "common/faultspec/workload_selector.h"

#include <gtest/gtest.h>

#include <string>

namespace faultline::faultspec {
namespace {

v1::WorkloadSelector ByLabel() {
  v1::WorkloadSelector s;
  s.set_runtime(v1::WorkloadSelector::DOCKER);
  (*s.mutable_labels())["app"] = "orders";
  return s;
}

// "field: message" of the first problem, "" when valid.
std::string First(const v1::WorkloadSelector& s) {
  FieldProblems p;
  ValidateWorkloadSelector(s, "workloads", &p);
  return p.ok() ? "" : p.problems().front().ToString();
}

TEST(ValidateWorkloadSelectorTest, AcceptsEachForm) {
  EXPECT_EQ(First(ByLabel()), "");
  v1::WorkloadSelector cri;
  cri.set_runtime(v1::WorkloadSelector::CRI);
  (*cri.mutable_labels())["app.kubernetes.io/name"] = "orders";
  cri.set_pod_namespace("shop-prod");
  cri.add_names("orders-0");
  EXPECT_EQ(First(cri), "");
  v1::WorkloadSelector any;
  any.set_runtime(v1::WorkloadSelector::ANY);
  any.add_ids("3f2a9c");
  EXPECT_EQ(First(any), "");
  v1::WorkloadSelector netns;
  netns.set_netns_path("/run/netns/x");
  EXPECT_EQ(First(netns), "");
  v1::WorkloadSelector cgroup;
  cgroup.set_cgroup_path("/sys/fs/cgroup/system.slice/orders.service");
  EXPECT_EQ(First(cgroup), "");
  v1::WorkloadSelector pid;
  pid.set_pid(4242);
  EXPECT_EQ(First(pid), "");
}

TEST(ValidateWorkloadSelectorTest, EmptySelectorIsRefused) {
  EXPECT_NE(First(v1::WorkloadSelector()).find("workloads: select workloads"), std::string::npos);
  EXPECT_TRUE(WorkloadSelectorIsSet(ByLabel()));
  EXPECT_FALSE(WorkloadSelectorIsSet(v1::WorkloadSelector()));
}

TEST(ValidateWorkloadSelectorTest, RuntimeWithoutLabelsNamesOrIdsWouldMatchEverything) {
  v1::WorkloadSelector s;
  s.set_runtime(v1::WorkloadSelector::DOCKER);
  EXPECT_NE(First(s).find("at least one of labels, names or ids"), std::string::npos);
}

TEST(ValidateWorkloadSelectorTest, LabelsWithoutRuntimeNeedOne) {
  v1::WorkloadSelector s = ByLabel();
  s.clear_runtime();
  EXPECT_EQ(First(s).rfind("workloads.runtime: required", 0), 0u) << First(s);
}

TEST(ValidateWorkloadSelectorTest, HandlesAreExclusive) {
  v1::WorkloadSelector two;
  two.set_netns_path("/run/netns/x");
  two.set_pid(7);
  EXPECT_NE(First(two).find("exactly one handle"), std::string::npos);
  v1::WorkloadSelector mixed = ByLabel();
  mixed.set_pid(7);
  EXPECT_NE(First(mixed).find("cannot be combined"), std::string::npos);
}

TEST(ValidateWorkloadSelectorTest, BadValuesNameTheirField) {
  v1::WorkloadSelector s = ByLabel();
  s.add_names("ok");
  s.add_names("bad name");
  EXPECT_EQ(First(s).rfind("workloads.names[1]: ", 0), 0u) << First(s);
  v1::WorkloadSelector k = ByLabel();
  (*k.mutable_labels())["bad key!"] = "x";
  EXPECT_EQ(First(k).rfind("workloads.labels: label key", 0), 0u) << First(k);
  v1::WorkloadSelector v = ByLabel();
  (*v.mutable_labels())["app"] = "has space";
  EXPECT_EQ(First(v).rfind("workloads.labels: value of label app", 0), 0u) << First(v);
  v1::WorkloadSelector ns = ByLabel();
  ns.set_runtime(v1::WorkloadSelector::CRI);
  ns.set_pod_namespace("Bad_NS");
  EXPECT_EQ(First(ns).rfind("workloads.pod_namespace: ", 0), 0u) << First(ns);
  v1::WorkloadSelector dns = ByLabel();
  dns.set_pod_namespace("default");
  EXPECT_NE(First(dns).find("needs runtime cri or any"), std::string::npos);
}

TEST(ValidateWorkloadSelectorTest, PathsMustBeCleanAndAbsolute) {
  for (const char* bad : {"run/netns/x", "/run/netns/../x", "/run/./netns", "/run//netns"}) {
    v1::WorkloadSelector s;
    s.set_netns_path(bad);
    EXPECT_EQ(First(s).rfind("workloads.netns_path: ", 0), 0u) << bad;
  }
  for (const char* bad :
       {"/sys/fs/cgroup", "/sys/fs/cgroupx/a", "/etc/a", "/sys/fs/cgroup/../a", "system.slice/x"}) {
    v1::WorkloadSelector s;
    s.set_cgroup_path(bad);
    EXPECT_EQ(First(s).rfind("workloads.cgroup_path: ", 0), 0u) << bad;
  }
  v1::WorkloadSelector init;
  init.set_pid(1);
  EXPECT_EQ(First(init).rfind("workloads.pid: ", 0), 0u);
  v1::WorkloadSelector huge;
  huge.set_pid(kMaxWorkloadPid + 1);
  EXPECT_EQ(First(huge).rfind("workloads.pid: ", 0), 0u);
}

TEST(ValidateWorkloadSelectorTest, BoundsOnRepeatedFields) {
  v1::WorkloadSelector s = ByLabel();
  for (size_t i = 0; i <= kMaxWorkloadNames; ++i) s.add_names("n" + std::to_string(i));
  EXPECT_NE(First(s).find("at most 64 names"), std::string::npos);
  v1::WorkloadSelector l;
  l.set_runtime(v1::WorkloadSelector::DOCKER);
  for (size_t i = 0; i <= kMaxWorkloadLabels; ++i) {
    (*l.mutable_labels())["k" + std::to_string(i)] = "v";
  }
  EXPECT_NE(First(l).find("at most 16 labels"), std::string::npos);
}

TEST(ValidateWorkloadSelectorTest, StatusFormNamesTheFirstProblem) {
  v1::WorkloadSelector s;
  s.set_pid(1);
  Status st = ValidateWorkloadSelector(s);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message().rfind("workload.pid: ", 0), 0u) << st.message();
}

}  // namespace
}  // namespace faultline::faultspec
