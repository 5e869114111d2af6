// `targets.X.workloads`: containers, pods and handles as targets. Every mistake is reported at
// file:line:column with its YAML field; the rules themselves are common/faultspec's.
#include <gtest/gtest.h>

#include <string>

#include "controller/experiment/parser.h"
#include "tests/unit/controller/experiment/experiment_text.h"

namespace faultline::experiment {
namespace {

using parser_testing::AllErrors;
using parser_testing::ExpectError;
using parser_testing::Replace;

// kValidExperiment with a target of workloads: lines 5-10 are the target; WORKLOADS is replaced
// by the lines under `workloads:` (line 8 on).
std::string Template() {
  return Replace(parser_testing::kValidExperiment, "  app: {selector: {role: app}}\n",
                 "  app:\n    selector: {role: app}\n    workloads:\nWORKLOADS\n"
                 "    mode: percent:50\n");
}

ParseOutcome ParseWith(const std::string& workloads) {
  std::string text = Template();
  text.replace(text.find("WORKLOADS"), 9, workloads);
  return ParseExperimentText(text, "w.yaml");
}

TEST(WorkloadsParserTest, RuntimeSelectorParses) {
  ParseOutcome o = ParseWith(
      "      runtime: docker\n      labels: {app: orders, app.kubernetes.io/part-of: shop}\n"
      "      names: [orders-1]");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const Target& t = o.experiment->targets.at(0);
  ASSERT_TRUE(t.workloads.has_value());
  EXPECT_EQ(t.workloads->runtime(), v1::WorkloadSelector::DOCKER);
  EXPECT_EQ(t.workloads->labels().at("app"), "orders");
  EXPECT_EQ(t.workloads->labels().at("app.kubernetes.io/part-of"), "shop");
  EXPECT_EQ(t.workloads->names(0), "orders-1");
  EXPECT_EQ(t.mode.kind, TargetMode::Kind::kPercent);
}

TEST(WorkloadsParserTest, HandlesParse) {
  ParseOutcome netns = ParseWith("      netns: /run/netns/orders");
  ASSERT_TRUE(netns.ok()) << AllErrors(netns);
  EXPECT_EQ(netns.experiment->targets[0].workloads->netns_path(), "/run/netns/orders");
  ParseOutcome pod = ParseWith(
      "      runtime: cri\n      labels: {app: orders}\n"
      "      namespace: shop");
  ASSERT_TRUE(pod.ok()) << AllErrors(pod);
  EXPECT_EQ(pod.experiment->targets[0].workloads->pod_namespace(), "shop");
  ParseOutcome pid = ParseWith("      pid: 4242");
  ASSERT_TRUE(pid.ok()) << AllErrors(pid);
  EXPECT_EQ(pid.experiment->targets[0].workloads->pid(), 4242u);
}

TEST(WorkloadsParserTest, TargetWithoutWorkloadsStillTargetsTheHost) {
  std::string text = Template();
  text.replace(text.find("    workloads:\nWORKLOADS\n"), 25, "");
  ParseOutcome o = ParseExperimentText(text, "w.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_FALSE(o.experiment->targets[0].workloads.has_value());
}

TEST(WorkloadsParserTest, UnknownKeyIsReportedAtTheKeyWithASuggestion) {
  ParseOutcome o = ParseWith("      runtime: docker\n      lables: {app: orders}");
  const Diagnostic* d = ExpectError(o, "targets.app.workloads.lables", 9, 7);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("did you mean 'labels'"), std::string::npos) << d->message;
}

TEST(WorkloadsParserTest, UnknownRuntimeIsReportedAtItsValue) {
  ParseOutcome o = ParseWith("      runtime: kubernetes\n      labels: {app: orders}");
  const Diagnostic* d = ExpectError(o, "targets.app.workloads.runtime", 8, 16);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("docker, cri or any"), std::string::npos);
  EXPECT_EQ(d->ToString().rfind("w.yaml:8:16: targets.app.workloads.runtime: ", 0), 0u);
}

TEST(WorkloadsParserTest, FaultspecProblemsPointAtTheElement) {
  ParseOutcome o = ParseWith("      runtime: docker\n      names: [orders-1, \"bad name\"]");
  const Diagnostic* d = ExpectError(o, "targets.app.workloads.names[1]", 9, 25);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("1-253 characters"), std::string::npos) << d->message;
}

TEST(WorkloadsParserTest, BadCgroupPathIsReportedAtItsValue) {
  ParseOutcome o = ParseWith("      cgroup: /etc/passwd");
  const Diagnostic* d = ExpectError(o, "targets.app.workloads.cgroup", 8, 15);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("below /sys/fs/cgroup"), std::string::npos) << d->message;
}

TEST(WorkloadsParserTest, HandleMixedWithLabelsIsRefused) {
  ParseOutcome o = ParseWith(
      "      netns: /run/netns/x\n      runtime: docker\n"
      "      labels: {app: orders}");
  const Diagnostic* d = ExpectError(o, "targets.app.workloads", 8, 7);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("cannot be combined"), std::string::npos) << d->message;
}

TEST(WorkloadsParserTest, RuntimeAloneWouldMatchEverythingAndIsRefused) {
  ParseOutcome o = ParseWith("      runtime: any");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(AllErrors(o).find("at least one of labels, names or ids"), std::string::npos)
      << AllErrors(o);
}

}  // namespace
}  // namespace faultline::experiment
