#include "agent/process/process_backend.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/unit/agent/host/host_call_gate.h"
#include "tests/unit/agent/process/child_process.h"

namespace faultline::agent::process {
namespace {

using testing::ChildProcess;
using testing::UniqueName;
namespace fs = std::filesystem;

class ProcessBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pf-backend-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ProcessBackendOptions Options() const {
    ProcessBackendOptions o;
    o.record_dir = (dir_ / "process").string();
    o.observe_interval = std::chrono::milliseconds(20);
    o.scope = SelectionScope{static_cast<int>(::getpid()), std::nullopt};
    return o;
  }

  static v1::FaultSpec Spec(v1::ProcessFault::Action action, const std::string& name) {
    v1::FaultSpec spec;
    spec.mutable_process()->set_action(action);
    spec.mutable_process()->set_name(name);
    return spec;
  }

  // Polls the handle's evidence until `key` reaches `want` or 10 s pass.
  static bool AwaitEvidence(const FaultHandle& handle, const std::string& key, uint64_t want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (handle.GetEvidence()[key] >= want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  fs::path dir_;
};

TEST_F(ProcessBackendTest, DetectsCapabilityAndValidatesTheSpec) {
  ProcessBackend backend(Options());
  EXPECT_EQ(backend.Kind(), "process");
  EXPECT_TRUE(backend.DetectCapability().ok()) << backend.DetectCapability().ToString();
  v1::FaultSpec spec;
  spec.mutable_dns();
  EXPECT_EQ(backend.Validate(spec).code(), StatusCode::kInvalidArgument);
  spec = Spec(v1::ProcessFault::KILL, "x");
  spec.mutable_process()->set_signal("SIGSEGV");
  EXPECT_EQ(backend.Validate(spec).code(), StatusCode::kInvalidArgument);
  // Apply validates too: nothing is read or signalled for a bad spec.
  EXPECT_EQ(backend.Apply("f1", spec).status().code(), StatusCode::kInvalidArgument);
}

// A one-shot kill's restart is the recovery being rehearsed: not killed again. A crash loop
// (interval_ms) and a pause follow the restart (the controls).
TEST_F(ProcessBackendTest, OnlyAOneShotKillDoesNotFollowARestartedWorkload) {
  ProcessBackend backend(Options());
  EXPECT_FALSE(backend.FollowsRestarts(Spec(v1::ProcessFault::KILL, "kv")));
  auto crash_loop = Spec(v1::ProcessFault::KILL, "kv");
  crash_loop.mutable_process()->set_interval_ms(500);
  EXPECT_TRUE(backend.FollowsRestarts(crash_loop));
  EXPECT_TRUE(backend.FollowsRestarts(Spec(v1::ProcessFault::PAUSE, "kv")));
}

TEST_F(ProcessBackendTest, KillWithNoMatchingProcessFailsAndChangesNothing) {
  ProcessBackend backend(Options());
  auto handle = backend.Apply("f1", Spec(v1::ProcessFault::KILL, UniqueName("none")));
  EXPECT_EQ(handle.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(handle.status().message().find("no process matches"), std::string::npos);
}

TEST_F(ProcessBackendTest, KillSendsTheSignalAndObservesTheRestart) {
  const std::string name = UniqueName("k");
  auto child = std::make_unique<ChildProcess>(name);
  ProcessBackend backend(Options());
  v1::FaultSpec spec = Spec(v1::ProcessFault::KILL, name);
  spec.mutable_process()->set_signal("SIGTERM");
  auto handle = backend.Apply("f1", spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ(child->AwaitDeathSignal(), SIGTERM);
  Evidence e = (*handle)->GetEvidence();
  EXPECT_EQ(e["processes_matched"], 1u);
  EXPECT_EQ(e["processes_signalled"], 1u);
  EXPECT_EQ(e["restarts_observed"], 0u);
  // The test plays the supervisor: the same program comes back under a new pid. It is observed
  // and left alone (no interval: the kill happens once).
  ChildProcess restarted(name);
  EXPECT_TRUE(AwaitEvidence(**handle, "restarts_observed", 1));
  EXPECT_TRUE((*handle)->Revert().ok());
  EXPECT_TRUE((*handle)->Revert().ok());  // idempotent
  EXPECT_EQ(::kill(restarted.pid(), 0), 0);
  EXPECT_EQ((*handle)->GetEvidence()["processes_signalled"], 1u);
  EXPECT_EQ((*handle)->GetEvidence()["restarts_observed"], 1u);
}

// Selection reads /proc on the backend's HostCallPool: when reads stuck in the kernel (a process
// in D state) hold every worker, an apply fails at once, names the selector, and signals nothing.
TEST_F(ProcessBackendTest, KillFailsAtOnceWhenProcReadsHoldEveryWorker) {
  const std::string name = UniqueName("s");
  ChildProcess child(name);
  ProcessBackendOptions options = Options();
  options.proc_pool = std::make_shared<host::HostCallPool>(
      host::HostCallPoolOptions{.name = "/proc", .max_workers = 1});
  host::testing::HostCallGate gate;
  ASSERT_TRUE(gate.HoldEveryWorker(*options.proc_pool));
  ProcessBackend backend(options);
  auto handle = backend.Apply("f1", Spec(v1::ProcessFault::KILL, name));
  EXPECT_EQ(handle.status().code(), StatusCode::kResourceExhausted) << handle.status().ToString();
  EXPECT_NE(handle.status().message().find("name '" + name + "'"), std::string::npos)
      << handle.status().message();
  EXPECT_EQ(::kill(child.pid(), 0), 0);  // not signalled
  gate.Open();
  ASSERT_TRUE(options.proc_pool->WaitIdle(std::chrono::seconds(10)));
  // The same apply works once /proc answers again.
  auto applied = backend.Apply("f2", Spec(v1::ProcessFault::KILL, name));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(child.AwaitDeathSignal(), SIGKILL);
  EXPECT_TRUE((*applied)->Revert().ok());
}

TEST_F(ProcessBackendTest, KillWithIntervalKillsRestartedProcessesUntilRevert) {
  const std::string name = UniqueName("loop");
  auto first = std::make_unique<ChildProcess>(name);
  ProcessBackend backend(Options());
  v1::FaultSpec spec = Spec(v1::ProcessFault::KILL, name);
  spec.mutable_process()->set_interval_ms(100);
  auto handle = backend.Apply("f1", spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ(first->AwaitDeathSignal(), SIGKILL);
  ChildProcess second(name);
  EXPECT_EQ(second.AwaitDeathSignal(), SIGKILL);  // killed again by the crash loop
  // The watcher counts the kill after the signal is sent, so the death can be seen first: wait
  // for the count (bounded; the evidence has no change notification).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((*handle)->GetEvidence()["processes_signalled"] < 2u &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  EXPECT_GE((*handle)->GetEvidence()["processes_signalled"], 2u);
  EXPECT_GE((*handle)->GetEvidence()["restarts_observed"], 1u);
  ASSERT_TRUE((*handle)->Revert().ok());
  // After revert a restart stays up: the watcher has stopped (it would have killed the process
  // within one interval; we check that no kill is counted after the revert returned).
  const uint64_t signalled = (*handle)->GetEvidence()["processes_signalled"];
  ChildProcess third(name);
  EXPECT_EQ(::kill(third.pid(), 0), 0);
  EXPECT_EQ((*handle)->GetEvidence()["processes_signalled"], signalled);
}

TEST_F(ProcessBackendTest, KillCountSignalsOnlyThatMany) {
  const std::string name = UniqueName("cnt");
  auto a = std::make_unique<ChildProcess>(name);
  auto b = std::make_unique<ChildProcess>(name);
  auto c = std::make_unique<ChildProcess>(name);
  ProcessBackend backend(Options());
  v1::FaultSpec spec = Spec(v1::ProcessFault::KILL, name);
  spec.mutable_process()->set_signal("SIGUSR1");  // default action: terminate
  spec.mutable_process()->set_count(2);
  auto handle = backend.Apply("f1", spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ((*handle)->GetEvidence()["processes_matched"], 3u);
  EXPECT_EQ((*handle)->GetEvidence()["processes_signalled"], 2u);
  // Exactly two of the three die (they stay zombies until reaped, so they can be counted).
  auto dead = [&] {
    int n = 0;
    for (auto* child : {a.get(), b.get(), c.get()}) {
      auto p = ReadProcess(child->pid());
      if (p.ok() && p->state == 'Z') ++n;
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (dead() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(dead(), 2);
  (*handle)->Revert();
}

TEST_F(ProcessBackendTest, PauseStopsAndRevertContinuesIdempotently) {
  const std::string name = UniqueName("p");
  ChildProcess child(name);
  ProcessBackend backend(Options());
  auto handle = backend.Apply("f1", Spec(v1::ProcessFault::PAUSE, name));
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_TRUE(child.AwaitStopped());
  Evidence e = (*handle)->GetEvidence();
  EXPECT_EQ(e["processes_signalled"], 1u);
  EXPECT_EQ(e["processes_paused"], 1u);
  EXPECT_EQ(e["cgroup_frozen"], 0u);
  EXPECT_TRUE(fs::exists(dir_ / "process" / "f1.paused"));
  ASSERT_TRUE((*handle)->Revert().ok());
  EXPECT_TRUE(child.AwaitRunning());
  EXPECT_EQ((*handle)->GetEvidence()["processes_continued"], 1u);
  EXPECT_FALSE(fs::exists(dir_ / "process" / "f1.paused"));
  ASSERT_TRUE((*handle)->Revert().ok());
  EXPECT_EQ((*handle)->GetEvidence()["processes_continued"], 1u);
  // RevertOrphan after a clean revert finds no record: nothing to do, OK.
  EXPECT_TRUE(backend.RevertOrphan("f1", Spec(v1::ProcessFault::PAUSE, name)).ok());
}

TEST_F(ProcessBackendTest, OrphanRevertContinuesExactlyTheRecordedProcesses) {
  const std::string name = UniqueName("o");
  ChildProcess paused(name);
  {
    ProcessBackend crashed(Options());
    auto handle = crashed.Apply("f1", Spec(v1::ProcessFault::PAUSE, name));
    ASSERT_TRUE(handle.ok()) << handle.status().ToString();
    ASSERT_TRUE(paused.AwaitStopped());
    // The handle is dropped without Revert: the agent "crashed" while the fault was active.
  }
  // Another process of the same name, stopped by someone else, appears after the crash: the
  // orphan revert must not touch it (it is not in the record).
  ChildProcess bystander(name);
  ASSERT_EQ(::kill(bystander.pid(), SIGSTOP), 0);
  ASSERT_TRUE(bystander.AwaitStopped());

  ProcessBackend restarted(Options());
  ASSERT_TRUE(restarted.RevertOrphan("f1", Spec(v1::ProcessFault::PAUSE, name)).ok());
  EXPECT_TRUE(paused.AwaitRunning());
  auto state = ReadProcess(bystander.pid());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->state, 'T');
  EXPECT_FALSE(fs::exists(dir_ / "process" / "f1.paused"));
  EXPECT_TRUE(restarted.RevertOrphan("f1", Spec(v1::ProcessFault::PAUSE, name)).ok());
}

TEST_F(ProcessBackendTest, OrphanRevertSkipsAReusedPid) {
  ChildProcess child(UniqueName("reuse"));
  ASSERT_EQ(::kill(child.pid(), SIGSTOP), 0);
  ASSERT_TRUE(child.AwaitStopped());
  // A record naming this pid with another start time: the process it names is gone and the
  // pid now belongs to `child`, which must stay stopped.
  PauseRecordStore store(Options().record_dir);
  ASSERT_TRUE(store.Write("f1", PauseRecord{"", {{child.pid(), child.start_time() + 7}}}).ok());
  ProcessBackend backend(Options());
  ASSERT_TRUE(backend.RevertOrphan("f1", Spec(v1::ProcessFault::PAUSE, "x")).ok());
  EXPECT_EQ(ReadProcess(child.pid())->state, 'T');
  EXPECT_FALSE(store.Read("f1")->has_value());
}

TEST_F(ProcessBackendTest, CorruptPauseRecordFailsOrphanRevertAndIsKept) {
  PauseRecordStore store(Options().record_dir);
  ASSERT_TRUE(store.Write("f1", PauseRecord{}).ok());
  std::ofstream(dir_ / "process" / "f1.paused") << "not a record\n";
  ProcessBackend backend(Options());
  EXPECT_EQ(backend.RevertOrphan("f1", Spec(v1::ProcessFault::PAUSE, "x")).code(),
            StatusCode::kInternal);
  EXPECT_TRUE(fs::exists(dir_ / "process" / "f1.paused"));
}

// The cgroup v2 root of this machine, or "" (then the freezer tests skip).
std::string Cgroup2Root() {
  for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs st {};
    if (statfs(dir, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return dir;
  }
  return "";
}

TEST_F(ProcessBackendTest, PauseOfAWholeCgroupUsesTheFreezer) {
  const std::string root = Cgroup2Root();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy";
  const std::string cgroup = "pf-test-" + std::to_string(::getpid());
  const fs::path dir = fs::path(root) / cgroup;
  std::error_code ec;
  if (!fs::create_directory(dir, ec))
    GTEST_SKIP() << "cannot create " << dir << ": " << ec.message();
  {
    ChildProcess a(UniqueName("fa")), b(UniqueName("fb"));
    bool moved = static_cast<bool>(std::ofstream(dir / "cgroup.procs") << a.pid() << std::flush) &&
                 static_cast<bool>(std::ofstream(dir / "cgroup.procs") << b.pid() << std::flush);
    ASSERT_TRUE(moved);
    ProcessBackend backend(Options());
    v1::FaultSpec spec;
    spec.mutable_process()->set_action(v1::ProcessFault::PAUSE);
    spec.mutable_process()->set_cgroup("/" + cgroup + "/");
    auto handle = backend.Apply("f1", spec);
    ASSERT_TRUE(handle.ok()) << handle.status().ToString();
    Evidence e = (*handle)->GetEvidence();
    EXPECT_EQ(e["cgroup_frozen"], 1u);
    EXPECT_EQ(e["processes_matched"], 2u);
    EXPECT_EQ(e["processes_paused"], 2u);
    std::string freeze;
    std::ifstream(dir / "cgroup.freeze") >> freeze;
    EXPECT_EQ(freeze, "1");
    ASSERT_TRUE((*handle)->Revert().ok());
    std::ifstream(dir / "cgroup.freeze") >> freeze;
    EXPECT_EQ(freeze, "0");
    EXPECT_EQ((*handle)->GetEvidence()["processes_continued"], 2u);

    // A part of the cgroup (count) cannot use the freezer: SIGSTOP for just that many.
    spec.mutable_process()->set_count(1);
    auto partial = backend.Apply("f2", spec);
    ASSERT_TRUE(partial.ok()) << partial.status().ToString();
    EXPECT_EQ((*partial)->GetEvidence()["cgroup_frozen"], 0u);
    EXPECT_EQ((*partial)->GetEvidence()["processes_paused"], 1u);
    ASSERT_TRUE((*partial)->Revert().ok());
    EXPECT_TRUE(a.AwaitRunning());
    EXPECT_TRUE(b.AwaitRunning());
  }
  // The children are reaped; the empty cgroup can go.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fs::remove(dir, ec) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace faultline::agent::process
