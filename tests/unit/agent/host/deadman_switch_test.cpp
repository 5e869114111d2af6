#include "agent/host/deadman_switch.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace faultline::agent::host {
namespace {

using std::chrono::milliseconds;

std::vector<std::string> Lines(const std::string& batch) {
  std::vector<std::string> out;
  std::istringstream in(batch);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST(ArmDeadmanTest, EveryRuleOfTheTableFirstMatchesTheAliveSet) {
  const std::string batch =
      "add table inet faultline_f1\n"
      "delete table inet faultline_f1\n"
      "add table inet faultline_f1\n"
      "add chain inet faultline_f1 out { type filter hook output priority 0; policy accept; }\n"
      "add rule inet faultline_f1 out tcp sport 7070 accept\n"
      "add rule inet faultline_f1 out ip daddr @peers4 counter name \"matched\" drop\n";
  const auto lines = Lines(ArmDeadman(batch, "inet", "faultline_f1", milliseconds(3000)));
  ASSERT_EQ(lines.size(), 8u);
  // The set comes right after the table is (re)created, before any rule needs it.
  EXPECT_EQ(lines[3], "add set inet faultline_f1 faultline_alive { type mark; flags timeout; }");
  EXPECT_EQ(lines[4], "add element inet faultline_f1 faultline_alive { 0x0 timeout 3000ms }");
  EXPECT_EQ(lines[6],
            "add rule inet faultline_f1 out meta mark & 0x0 @faultline_alive tcp sport "
            "7070 accept");
  EXPECT_EQ(lines[7],
            "add rule inet faultline_f1 out meta mark & 0x0 @faultline_alive ip daddr "
            "@peers4 counter name \"matched\" drop");
}

TEST(ArmDeadmanTest, LeavesOtherTablesRulesAlone) {
  const std::string batch =
      "add table inet faultline_f1\n"
      "add rule inet other out drop\n"
      "add rule inet faultline_f10 out drop\n";
  const auto lines = Lines(ArmDeadman(batch, "inet", "faultline_f1", milliseconds(3000)));
  EXPECT_EQ(lines[3], "add rule inet other out drop");
  EXPECT_EQ(lines[4], "add rule inet faultline_f10 out drop");
}

TEST(ArmDeadmanTest, RefreshDeletesAndReAddsInOneBatch) {
  EXPECT_EQ(DeadmanRefreshBatch("inet", "faultline_f1", milliseconds(2500)),
            "add element inet faultline_f1 faultline_alive { 0x0 timeout 2500ms }\n"
            "delete element inet faultline_f1 faultline_alive { 0x0 }\n"
            "add element inet faultline_f1 faultline_alive { 0x0 timeout 2500ms }\n");
}

TEST(DeadmanSwitchTest, KeepAndReleaseAreIdempotent) {
  DeadmanSwitch sw(milliseconds(60000));
  sw.Keep("inet", "faultline_a");
  sw.Keep("inet", "faultline_a");
  EXPECT_EQ(sw.kept(), 1u);
  sw.Release("inet", "faultline_a");
  sw.Release("inet", "faultline_a");
  EXPECT_EQ(sw.kept(), 0u);
  // Nothing kept: a refresh does nothing and fails nothing.
  EXPECT_EQ(sw.RefreshAll(), 0);
  EXPECT_EQ(sw.failures(), 0u);
}

TEST(DeadmanSwitchTest, TimeoutHasAFloor) {
  EXPECT_EQ(DeadmanSwitch(milliseconds(10)).timeout(), milliseconds(500));
}

}  // namespace
}  // namespace faultline::agent::host
