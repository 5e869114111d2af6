#include "agent/host/event_loop.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace faultline::agent::host {
namespace {

using namespace std::chrono_literals;

// Records what the loop delivers; each delivery can complete a promise the test awaits.
class Recorder : public EventLoop::Handler {
 public:
  void OnLoopStart() override { loop_thread = std::this_thread::get_id(); }
  void OnEvent(uint64_t tag, uint32_t events) override {
    std::lock_guard lock(mu);
    this->events.push_back({tag, events});
    if (on_event) on_event(tag);
  }
  void OnTimer() override {
    ++timers;
    if (on_timer) on_timer();
  }
  std::mutex mu;
  std::vector<std::pair<uint64_t, uint32_t>> events;
  std::function<void(uint64_t)> on_event;
  std::function<void()> on_timer;
  std::atomic<int> timers{0};
  std::thread::id loop_thread;
};

TEST(EventLoopTest, PostedCommandsRunInOrderOnTheLoopThread) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status().ToString();
  Recorder r;
  ASSERT_TRUE((*loop)->Start(r).ok());
  std::vector<int> order;
  std::promise<std::thread::id> ran_on;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*loop)->Post([&order, i] { order.push_back(i); }));
  ASSERT_TRUE((*loop)->Post([&] { ran_on.set_value(std::this_thread::get_id()); }));
  auto id = ran_on.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE((*loop)->InLoopThread());
  (*loop)->Stop();  // before the handler and `order` go out of scope
}

TEST(EventLoopTest, AWatchedFdIsDeliveredWithItsTagAndUnwatchingStopsIt) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  Recorder r;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::promise<void> seen;
  r.on_event = [&](uint64_t) {
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));  // level-triggered: consume it
    seen.set_value();
  };
  ASSERT_TRUE((*loop)->Watch(fd, EPOLLIN, 42));
  ASSERT_TRUE((*loop)->Start(r).ok());
  uint64_t one = 1;
  ASSERT_EQ(write(fd, &one, sizeof(one)), 8);
  ASSERT_EQ(seen.get_future().wait_for(10s), std::future_status::ready);
  {
    std::lock_guard lock(r.mu);
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].first, 42u);
    EXPECT_NE(r.events[0].second & EPOLLIN, 0u);
  }
  // Unwatched on the loop thread; a posted marker after a second write proves no event came.
  std::promise<void> unwatched;
  (*loop)->Post([&] {
    (*loop)->Unwatch(fd);
    unwatched.set_value();
  });
  unwatched.get_future().wait();
  ASSERT_EQ(write(fd, &one, sizeof(one)), 8);
  std::promise<void> marker;
  (*loop)->Post([&] { marker.set_value(); });
  marker.get_future().wait();
  (*loop)->Stop();
  std::lock_guard lock(r.mu);
  EXPECT_EQ(r.events.size(), 1u);
  close(fd);
}

TEST(EventLoopTest, ArmedTimerFiresAndDisarmedTimerDoesNot) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  Recorder r;
  std::promise<void> fired;
  r.on_timer = [&] { fired.set_value(); };
  ASSERT_TRUE((*loop)->Start(r).ok());
  // Armed, then disarmed before it is due: never fires. Then armed in the past: fires at once.
  (*loop)->Post([&] {
    (*loop)->ArmTimer(std::chrono::steady_clock::now() + 1h);
    (*loop)->ArmTimer(kNoDeadline);
    (*loop)->ArmTimer(std::chrono::steady_clock::now() - 1s);
  });
  ASSERT_EQ(fired.get_future().wait_for(10s), std::future_status::ready);
  (*loop)->Stop();
  EXPECT_EQ(r.timers.load(), 1);
}

TEST(EventLoopTest, StopJoinsTheThreadAndLaterPostsAreRefused) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  Recorder r;
  ASSERT_TRUE((*loop)->Start(r).ok());
  std::promise<void> started;
  (*loop)->Post([&] { started.set_value(); });
  started.get_future().wait();
  (*loop)->Stop();
  (*loop)->Stop();  // idempotent
  bool ran = false;
  EXPECT_FALSE((*loop)->Post([&] { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_FALSE((*loop)->Start(r).ok());
}

TEST(EventLoopTest, AcceptExhaustionIsTheLackOfFdsOrMemoryOnly) {
  for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) EXPECT_TRUE(IsAcceptExhaustion(e)) << e;
  for (int e : {EAGAIN, ECONNABORTED, EINTR, EINVAL}) EXPECT_FALSE(IsAcceptExhaustion(e)) << e;
}

}  // namespace
}  // namespace faultline::agent::host
