#include "agent/process/proc_reader.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "tests/unit/agent/process/child_process.h"

namespace faultline::agent::process {
namespace {

using testing::ChildProcess;
using testing::UniqueName;

TEST(ProcReaderTest, ParsesStatWithParenthesesInComm) {
  const std::string stat =
      "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto info = ParseProcStat(stat);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->pid, 4242);
  EXPECT_EQ(info->comm, "a) b (c)");
  EXPECT_EQ(info->state, 'S');
  EXPECT_EQ(info->start_time, 987654u);
  EXPECT_FALSE(info->kernel_thread);
}

TEST(ProcReaderTest, RecognisesKernelThreads) {
  const std::string stat =
      "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 "
      "0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0";
  auto info = ParseProcStat(stat);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->kernel_thread);
}

TEST(ProcReaderTest, RejectsMalformedStat) {
  EXPECT_FALSE(ParseProcStat("").ok());
  EXPECT_FALSE(ParseProcStat("12 (x S 1").ok());
  EXPECT_FALSE(ParseProcStat("12 (x) S 1 2 3").ok());
  EXPECT_FALSE(ParseProcStat("abc (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20").ok());
}

TEST(ProcReaderTest, SignalsOnlyTheProcessWithTheRecordedStartTime) {
  ChildProcess child(UniqueName("sig"));
  const uint64_t start = child.start_time();
  ASSERT_NE(start, 0u);
  // A different start time stands for a process that reused the pid: never signalled.
  Status s = SignalExactly(child.pid(), start + 1, SIGKILL);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  ASSERT_TRUE(SignalExactly(child.pid(), start, SIGSTOP).ok());
  EXPECT_TRUE(child.AwaitStopped());
  ASSERT_TRUE(SignalExactly(child.pid(), start, SIGCONT).ok());
  EXPECT_TRUE(child.AwaitRunning());
  ASSERT_TRUE(SignalExactly(child.pid(), start, SIGTERM).ok());
  EXPECT_EQ(child.AwaitDeathSignal(), SIGTERM);
}

TEST(ProcReaderTest, RefusesPidOneAndReportsGoneProcesses) {
  EXPECT_EQ(SignalExactly(1, 1, SIGCONT).code(), StatusCode::kInvalidArgument);
  ChildProcess child(UniqueName("gone"));
  const int pid = child.pid();
  const uint64_t start = child.start_time();
  child.KillAndReap();
  EXPECT_EQ(SignalExactly(pid, start, SIGCONT).code(), StatusCode::kNotFound);
}

TEST(ProcReaderTest, ReadsExeCgroupAndNamespaceOfSelf) {
  EXPECT_EQ(ExeBasename(static_cast<int>(::getpid())), "agent_process_test");
  EXPECT_TRUE(NetNamespaceOf(0).has_value());
  auto own = NetNamespaceOf(static_cast<int>(::getpid()));
  ASSERT_TRUE(own.has_value());
  EXPECT_TRUE(*own == *NetNamespaceOf(0));
  auto cgroup = CgroupV2PathOf(static_cast<int>(::getpid()));
  ASSERT_TRUE(cgroup.has_value());
  EXPECT_EQ(cgroup->front(), '/');
}

}  // namespace
}  // namespace faultline::agent::process
