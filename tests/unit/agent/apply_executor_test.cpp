#include "agent/apply_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace faultline::agent {
namespace {

// A task that waits until Open(); Started() tells when a worker runs it.
class Gate {
 public:
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    started_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  bool Started() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return started_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool open_ = false;
};

TEST(ApplyExecutorTest, BoundedQueueRefusesAndShutdownRejectsWhatWaits) {
  ApplyExecutor executor(ApplyExecutorOptions{1, 1});
  Gate gate;
  std::atomic<int> ran{0}, rejected{0};
  ASSERT_TRUE(executor.Submit(
      [&] {
        gate.Pass();
        ++ran;
      },
      [&] { ++rejected; }));
  ASSERT_TRUE(gate.Started());                                        // the only worker is busy
  ASSERT_TRUE(executor.Submit([&] { ++ran; }, [&] { ++rejected; }));  // queued
  EXPECT_EQ(executor.queued(), 1u);
  // Full: refused, neither callback runs.
  EXPECT_FALSE(executor.Submit([&] { ++ran; }, [&] { ++rejected; }));

  executor.Shutdown();  // the queued task is rejected, the running one goes on
  EXPECT_EQ(rejected.load(), 1);
  EXPECT_FALSE(executor.Submit([&] { ++ran; }, [&] { ++rejected; }));
  EXPECT_EQ(executor.running(), 1u);
  gate.Open();
  EXPECT_TRUE(executor.WaitIdle(std::chrono::seconds(10)));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(rejected.load(), 1);
}

TEST(ApplyExecutorTest, DestroyingItDoesNotWaitForAStuckTask) {
  auto gate = std::make_shared<Gate>();
  {
    ApplyExecutor executor(ApplyExecutorOptions{1, 1});
    ASSERT_TRUE(executor.Submit([gate] { gate->Pass(); }, nullptr));
    ASSERT_TRUE(gate->Started());
    EXPECT_FALSE(executor.WaitIdle(std::chrono::milliseconds(0)));
  }              // returns although the task is still running
  gate->Open();  // lets the detached worker end
}

}  // namespace
}  // namespace faultline::agent
