// FanOut: bounded concurrency, retries of retryable failures only, results in call order.
#include "controller/engine/fan_out.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace faultline::engine {
namespace {

using namespace std::chrono_literals;

FanOutOptions Fast(size_t max_in_flight, int attempts) {
  FanOutOptions o;
  o.max_in_flight = max_in_flight;
  o.max_attempts = attempts;
  o.retry_backoff = 1ms;
  return o;
}

// Calls answered later from other threads (like gRPC's): never more than max_in_flight of them
// outstanding, and every one answered.
TEST(FanOutTest, NeverMoreThanTheBoundInFlight) {
  std::atomic<int> in_flight{0}, peak{0};
  std::mutex mu;
  std::vector<std::thread> answerers;
  auto results = FanOut<int>(
      200,
      [&](size_t i, Duration, std::function<void(Result<int>)> done) {
        int now = ++in_flight;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::lock_guard lock(mu);
        answerers.emplace_back([&, i, done = std::move(done)] {
          --in_flight;
          done(static_cast<int>(i) * 2);
        });
      },
      Fast(8, 1));
  {
    std::lock_guard lock(mu);
    for (auto& t : answerers) t.join();
  }
  ASSERT_EQ(results.size(), 200u);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok());
    EXPECT_EQ(*results[i], static_cast<int>(i) * 2);
  }
  EXPECT_LE(peak.load(), 8);
  EXPECT_GE(peak.load(), 1);
}

TEST(FanOutTest, RetriesUnavailableAndDeadlineButNotOtherErrors) {
  std::vector<std::atomic<int>> attempts(3);
  std::vector<size_t> finals;
  auto results = FanOut<int>(
      3,
      [&](size_t i, Duration, std::function<void(Result<int>)> done) {
        int a = ++attempts[i];
        if (i == 0) return done(a < 3 ? Result<int>(Unavailable("down")) : Result<int>(7));
        if (i == 1) return done(DeadlineExceeded("ack lost"));
        done(FailedPrecondition("the agent refused"));
      },
      Fast(4, 3), [&](size_t i, const Result<int>&) { finals.push_back(i); });
  EXPECT_EQ(attempts[0].load(), 3);
  ASSERT_TRUE(results[0].ok());
  EXPECT_EQ(*results[0], 7);
  EXPECT_EQ(attempts[1].load(), 3);  // every attempt used, then the last error stands
  EXPECT_EQ(results[1].status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(attempts[2].load(), 1);  // a definitive answer is never retried
  EXPECT_EQ(results[2].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(finals.size(), 3u);  // on_final once per call
}

TEST(FanOutTest, NothingToDoReturnsAtOnce) {
  auto results = FanOut<int>(
      0, [](size_t, Duration, std::function<void(Result<int>)>) { FAIL() << "no call expected"; },
      Fast(4, 3));
  EXPECT_TRUE(results.empty());
}

}  // namespace
}  // namespace faultline::engine
