#include "agent/process/process_selector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <thread>

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

// A kill by name of sshd (or journald, the container runtime, the agent...) must never reach it.
// The child here is named sshd; the test only selects, it never signals.
TEST(ProcessSelectorTest, ProtectedProcessesAreNeverSelected) {
  ChildProcess sshd("sshd");
  v1::ProcessFault f = Kill();
  f.set_name("sshd");
  auto by_name = SelectProcesses(f, TestScope(), true);
  EXPECT_EQ(by_name.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(by_name.status().message().find("'sshd' is a protected process"), std::string::npos)
      << by_name.status().message();
  // Not strict (the restart watcher): nothing, silently.
  auto watcher = SelectProcesses(f, TestScope(), false);
  ASSERT_TRUE(watcher.ok());
  EXPECT_TRUE(watcher->empty());
  // Reached another way (its pid in a pidfile), it is still refused.
  const std::string pidfile =
      (std::filesystem::temp_directory_path() / (UniqueName("ps") + ".pid")).string();
  std::ofstream(pidfile) << sshd.pid() << "\n";
  f.set_pidfile(pidfile);
  EXPECT_EQ(SelectProcesses(f, TestScope(), true).status().code(), StatusCode::kFailedPrecondition);
  std::filesystem::remove(pidfile);
  for (const char* name : {"systemd-journald", "containerd", "dockerd", "podman", "conmon", "runc",
                           "crio", "faultline-agent", "faultline-controller", "init"}) {
    EXPECT_TRUE(IsProtectedName(name, TestScope())) << name;
  }
  // The kernel cuts a comm to 15 characters: "systemd-journal" is journald's.
  EXPECT_TRUE(IsProtectedName("systemd-journal", TestScope()));
  EXPECT_TRUE(sshd.AwaitRunning());
}

TEST(ProcessSelectorTest, ConfiguredProtectedNamesAreNeverSelected) {
  const std::string name = UniqueName("pp");
  ChildProcess child(name);
  v1::ProcessFault f = Kill();
  f.set_name(name);
  // Negative control: not protected, it is selected.
  auto before = SelectProcesses(f, TestScope(), true);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  SelectionScope scope = TestScope();
  scope.protected_names.push_back(name);
  EXPECT_EQ(SelectProcesses(f, scope, true).status().code(), StatusCode::kFailedPrecondition);
  // By cgroup too: whatever else the cgroup holds, the protected process is not in the selection.
  EXPECT_FALSE(IsEligible(*ReadProcess(child.pid()), scope));
  EXPECT_TRUE(IsEligible(*ReadProcess(child.pid()), TestScope()));
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

// Runs SelectProcesses on a thread of its own and waits for it at most a few seconds: a
// selection that blocks (a pidfile read that never returns) fails the test instead of hanging
// it. The thread is detached so a blocked read cannot keep the test binary from exiting.
std::optional<Status> SelectWithin(const v1::ProcessFault& f, bool strict) {
  auto done = std::make_shared<std::promise<Status>>();
  std::future<Status> result = done->get_future();
  std::thread([f, strict, done] {
    done->set_value(SelectProcesses(f, TestScope(), strict).status());
  }).detach();
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return std::nullopt;
  return result.get();
}

TEST(ProcessSelectorTest, PidfileThatIsNotARegularFileFailsAtOnceWithoutBlocking) {
  ChildProcess child(UniqueName("pn"));
  const auto dir = std::filesystem::temp_directory_path() / UniqueName("pidfiles");
  std::filesystem::create_directories(dir);
  const std::string fifo = (dir / "fifo.pid").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string regular = (dir / "real.pid").string();
  std::ofstream(regular) << child.pid() << "\n";
  const std::string link = (dir / "link.pid").string();
  std::filesystem::create_symlink(regular, link);

  for (const std::string& path : {fifo, std::string("/dev/ptmx"), dir.string(), link}) {
    v1::ProcessFault f = Kill();
    f.set_pidfile(path);
    std::optional<Status> strict = SelectWithin(f, true);
    if (!strict && path == fifo) {
      // Unblock the reader stuck in open() so the leaked thread ends.
      int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0) ::close(w);
    }
    ASSERT_TRUE(strict.has_value()) << "reading pidfile " << path << " blocked";
    EXPECT_EQ(strict->code(), StatusCode::kFailedPrecondition)
        << path << ": " << strict->ToString();
    EXPECT_NE(strict->message().find(path), std::string::npos) << strict->ToString();
    // The restart watcher of a kill fault with an interval reads it every tick: nothing
    // selected, at once.
    std::optional<Status> lenient = SelectWithin(f, false);
    ASSERT_TRUE(lenient.has_value()) << "reading pidfile " << path << " blocked";
    EXPECT_TRUE(lenient->ok()) << lenient->ToString();
  }
  // Control: the regular file the link points to selects the child.
  v1::ProcessFault f = Kill();
  f.set_pidfile(regular);
  auto selected = SelectProcesses(f, TestScope(), true);
  ASSERT_TRUE(selected.ok()) << selected.status().ToString();
  ASSERT_EQ(selected->size(), 1u);
  // The pidfile swapped for a FIFO under a running fault: the next read fails at once.
  std::filesystem::remove(regular);
  ASSERT_EQ(::mkfifo(regular.c_str(), 0600), 0);
  std::optional<Status> swapped = SelectWithin(f, false);
  if (!swapped) {
    int w = ::open(regular.c_str(), O_WRONLY | O_NONBLOCK);
    if (w >= 0) ::close(w);
  }
  ASSERT_TRUE(swapped.has_value()) << "reading a pidfile swapped for a FIFO blocked";
  std::filesystem::remove_all(dir);
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
