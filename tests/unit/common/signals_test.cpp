#include "common/signals.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <future>

namespace faultline {
namespace {

using namespace std::chrono_literals;

// Each test runs in its own process (gtest_discover_tests), so blocking a signal here does not leak
// into another test.

TEST(SignalsTest, WaitTakesABlockedSignalInsteadOfItsDefaultAction) {
  BlockedSignals signals({SIGUSR2, SIGTERM});
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);  // would end the process if it were not blocked
  EXPECT_EQ(signals.Wait(), SIGTERM);
}

TEST(SignalsTest, WaitForReturnsZeroWhenNothingArrivesAndTheSignalWhenOneIsPending) {
  BlockedSignals signals({SIGUSR2});
  EXPECT_EQ(signals.WaitFor(0ns), 0);
  ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
  siginfo_t info{};
  EXPECT_EQ(signals.WaitFor(10s, &info), SIGUSR2);
  EXPECT_EQ(info.si_pid, ::getpid());
  EXPECT_EQ(signals.WaitFor(-1s), 0);
}

TEST(SignalsTest, PreviousMaskIsTheMaskBeforeBlocking) {
  BlockedSignals signals({SIGUSR2});
  EXPECT_FALSE(sigismember(&signals.previous_mask(), SIGUSR2));
  EXPECT_TRUE(sigismember(&signals.set(), SIGUSR2));
  sigset_t now;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGUSR2));
}

TEST(SignalsTest, SignalThreadCallsTheFunctionForEachSignal) {
  BlockedSignals signals({SIGUSR2, SIGINT});
  std::promise<int> first, second;
  int calls = 0;
  {
    SignalThread thread(signals, [&](int sig) {
      if (++calls == 1) {
        first.set_value(sig);
      } else if (calls == 2) {
        second.set_value(sig);
      }
    });
    ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
    EXPECT_EQ(first.get_future().get(), SIGINT);
    ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
    EXPECT_EQ(second.get_future().get(), SIGUSR2);
  }
  EXPECT_EQ(calls, 2);
}

TEST(SignalsTest, ASignalAfterTheThreadIsDestroyedStaysPending) {
  BlockedSignals signals({SIGUSR2});
  bool called = false;
  {
    SignalThread thread(signals, [&](int) { called = true; });
  }  // returns: the thread stopped
  ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
  EXPECT_EQ(signals.WaitFor(10s), SIGUSR2);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace faultline
