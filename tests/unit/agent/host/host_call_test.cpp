#include "agent/host/host_call.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "tests/unit/agent/host/host_call_gate.h"

namespace faultline::agent::host {
namespace {

using std::chrono::milliseconds;
using testing::HostCallGate;

// Generous: only a broken implementation (a caller that waits for a stuck call) comes near it.
constexpr milliseconds kBound{10'000};

TEST(HostCallPoolTest, StuckCallReturnsDeadlineExceededNamingTheOperation) {
  HostCallPool pool(HostCallPoolOptions{.name = "test", .max_workers = 2});
  HostCallGate gate;
  Status s =
      pool.Call("nftables transaction 'add table inet x'", milliseconds(1), gate.BlockingCall());
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.ToString();
  EXPECT_NE(s.message().find("nftables transaction 'add table inet x'"), std::string::npos)
      << s.message();
  EXPECT_EQ(pool.abandoned(), 1u);
  EXPECT_EQ(pool.busy(), 1u);  // the stuck call keeps its worker

  // Another call still gets the other worker and its answer while the first is stuck.
  Result<int> answer =
      CallWithDeadline<int>(pool, "answer", kBound, []() -> Result<int> { return 42; });
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(*answer, 42);
  EXPECT_EQ(pool.abandoned(), 1u);

  gate.Open();
  EXPECT_TRUE(pool.WaitIdle(kBound));
  EXPECT_EQ(pool.abandoned(), 0u);  // counted out when it finally returned
}

TEST(HostCallPoolTest, WhenEveryWorkerIsStuckNewCallsFailAtOnceInsteadOfQueueing) {
  HostCallPool pool(HostCallPoolOptions{.name = "journal", .max_workers = 2});
  HostCallGate gate;
  ASSERT_TRUE(gate.HoldEveryWorker(pool));
  EXPECT_EQ(pool.abandoned(), 2u);

  auto ran = std::make_shared<std::atomic<bool>>(false);
  Status s =
      CallWithDeadline(pool, "journal: removing the record of fault f", kBound, [ran]() -> Status {
        *ran = true;
        return Status::Ok();
      });
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("removing the record of fault f"), std::string::npos);
  EXPECT_FALSE(*ran);  // refused, not queued behind the stuck calls

  // Once the stuck calls return, their workers serve again.
  gate.Open();
  ASSERT_TRUE(pool.WaitIdle(kBound));
  s = CallWithDeadline(pool, "later", kBound, [ran]() -> Status {
    *ran = true;
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(*ran);
}

// Workers busy with calls that will return (concurrent reverts contending for one nft context)
// are not stuck: a new call waits for one within its deadline instead of failing at once.
TEST(HostCallPoolTest, BusyButNotStuckWorkersMakeACallWaitNotFail) {
  HostCallPool pool(HostCallPoolOptions{.name = "nftables", .max_workers = 1});
  HostCallGate gate;
  auto entered = std::make_shared<std::promise<void>>();
  auto first = std::async(std::launch::async, [&pool, entered, wait = gate.BlockingCall()] {
    return pool.Call("first", kBound, [entered, wait] {
      entered->set_value();
      wait();
    });
  });
  entered->get_future().wait();  // the only worker is busy (not abandoned)
  auto second = std::async(std::launch::async, [&pool] {
    return CallWithDeadline(pool, "second", kBound, []() -> Status { return Status::Ok(); });
  });
  gate.Open();
  ASSERT_EQ(second.wait_for(kBound), std::future_status::ready);
  EXPECT_TRUE(second.get().ok());
  EXPECT_TRUE(first.get().ok());
}

TEST(HostCallPoolTest, CallReturnsTheCallsOwnErrorWhenInTime) {
  HostCallPool pool;
  Status s = CallWithDeadline(pool, "op", kBound,
                              []() -> Status { return Unavailable("nftables: rejected"); });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "nftables: rejected");
}

TEST(HostCallPoolTest, AbandonedCallMayOutliveThePoolAndItsCaller) {
  HostCallGate gate;
  auto finished = std::make_shared<std::promise<int>>();
  std::future<int> result = finished->get_future();
  {
    HostCallPool pool(HostCallPoolOptions{.max_workers = 1});
    Status s = pool.Call("op", milliseconds(1), [finished, wait = gate.BlockingCall()] {
      wait();
      finished->set_value(7);
    });
    EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  }  // the pool is gone while its worker is still stuck
  gate.Open();
  // The worker finishes on state it owns (no use of the destroyed pool).
  ASSERT_EQ(result.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(result.get(), 7);
}

}  // namespace
}  // namespace faultline::agent::host
