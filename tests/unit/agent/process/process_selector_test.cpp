#include "agent/process/process_selector.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/unit/agent/process/child_process.h"

namespace faultline::agent::process {
namespace {

using testing::ChildProcess;
using testing::UniqueName;

v1::ProcessFault Kill() {
  v1::ProcessFault f;
  f.set_action(v1::ProcessFault::KILL);
  f.set_name("x");
  return f;
}

SelectionScope TestScope() { return SelectionScope{static_cast<int>(::getpid()), std::nullopt}; }

TEST(ProcessSelectorTest, SelectsByNameExactly) {
  const std::string name = UniqueName("n");
  ChildProcess a(name), b(name), other(UniqueName("m"));
  v1::ProcessFault f = Kill();
  f.set_name(name);
  auto selected = SelectProcesses(f, TestScope(), true);
  ASSERT_TRUE(selected.ok());
  ASSERT_EQ(selected->size(), 2u);
  EXPECT_EQ((*selected)[0].pid, std::min(a.pid(), b.pid()));
  EXPECT_EQ((*selected)[1].pid, std::max(a.pid(), b.pid()));
  // Exact: a prefix of the name matches nothing.
  f.set_name(name.substr(0, name.size() - 1));
  EXPECT_TRUE(SelectProcesses(f, TestScope(), true)->empty());
}

TEST(ProcessSelectorTest, NeverSelectsTheAgentPidOneOrKernelThreads) {
  v1::ProcessFault f = Kill();
  // This test binary stands for the agent: its own name selects only its children, never it.
  f.set_name("agent_process_test");
  auto own_name = SelectProcesses(f, TestScope(), true);
  ASSERT_TRUE(own_name.ok());
  for (const ProcessInfo& p : *own_name) {
    EXPECT_NE(p.pid, ::getpid());
  }
  f.set_name("kthreadd");
  EXPECT_TRUE(SelectProcesses(f, TestScope(), true)->empty());
  const std::string pidfile =
      (std::filesystem::temp_directory_path() / (UniqueName("p1") + ".pid")).string();
  std::ofstream(pidfile) << "1\n";
  f.set_pidfile(pidfile);
  EXPECT_EQ(SelectProcesses(f, TestScope(), true).status().code(), StatusCode::kFailedPrecondition);
  std::ofstream(pidfile) << ::getpid() << "\n";
  EXPECT_EQ(SelectProcesses(f, TestScope(), true).status().code(), StatusCode::kFailedPrecondition);
  std::filesystem::remove(pidfile);
}

TEST(ProcessSelectorTest, SelectsByPidfile) {
  ChildProcess child(UniqueName("pf"));
  const std::string pidfile =
      (std::filesystem::temp_directory_path() / (UniqueName("pf") + ".pid")).string();
  v1::ProcessFault f = Kill();
  f.set_pidfile(pidfile);
  std::filesystem::remove(pidfile);
  EXPECT_EQ(SelectProcesses(f, TestScope(), true).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(SelectProcesses(f, TestScope(), false)->empty());
  std::ofstream(pidfile) << "garbage\n";
  EXPECT_EQ(SelectProcesses(f, TestScope(), true).status().code(), StatusCode::kNotFound);
  std::ofstream(pidfile) << " " << child.pid() << "\n";
  auto selected = SelectProcesses(f, TestScope(), true);
  ASSERT_TRUE(selected.ok()) << selected.status().ToString();
  ASSERT_EQ(selected->size(), 1u);
  EXPECT_EQ((*selected)[0].pid, child.pid());
  std::filesystem::remove(pidfile);
}

TEST(ProcessSelectorTest, NamespaceScopeExcludesOtherNamespaces) {
  ChildProcess child(UniqueName("ns"));
  v1::ProcessFault f = Kill();
  f.set_name(UniqueName("ns"));
  SelectionScope own = TestScope();
  own.net_namespace = NetNamespaceOf(0);
  EXPECT_EQ(SelectProcesses(f, own, true)->size(), 1u);
  SelectionScope elsewhere = TestScope();
  elsewhere.net_namespace = NamespaceId{1, 1};
  EXPECT_TRUE(SelectProcesses(f, elsewhere, true)->empty());
}

TEST(ProcessSelectorTest, AnAgentInANamedNetworkNamespaceIsConfinedToIt) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("pf-netns-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // Stands for /run/netns/<name>: the same namespace inode as this process's.
  std::filesystem::create_symlink("/proc/self/ns/net", dir / "host-a");
  SelectionScope scope = ScopeForThisAgent(dir.string());
  EXPECT_EQ(scope.self_pid, ::getpid());
  ASSERT_TRUE(scope.net_namespace.has_value());
  EXPECT_TRUE(*scope.net_namespace == *NetNamespaceOf(0));
  std::filesystem::remove_all(dir);
}

TEST(ProcessSelectorTest, ChoosesCountOrPercentOfTheMatches) {
  std::vector<ProcessInfo> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(ProcessInfo{100 + i, 1, false, 'S', "x"});
  v1::ProcessFault f = Kill();
  EXPECT_EQ(ChooseSubset(ten, f).size(), 10u);
  f.set_count(3);
  auto three = ChooseSubset(ten, f);
  ASSERT_EQ(three.size(), 3u);
  EXPECT_TRUE(std::is_sorted(three.begin(), three.end(),
                             [](const auto& a, const auto& b) { return a.pid < b.pid; }));
  f.set_count(50);
  EXPECT_EQ(ChooseSubset(ten, f).size(), 10u);
  f.set_count(0);
  f.set_percent(25);  // 2.5 rounds up
  EXPECT_EQ(ChooseSubset(ten, f).size(), 3u);
  f.set_percent(1);  // at least one
  EXPECT_EQ(ChooseSubset(ten, f).size(), 1u);
  EXPECT_TRUE(ChooseSubset({}, f).empty());
}

}  // namespace
}  // namespace faultline::agent::process
