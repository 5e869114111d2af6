#include "agent/lease_keeper.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace faultline::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class LeaseKeeperTest : public ::testing::Test {
 protected:
  std::vector<std::string> Expired() {
    std::lock_guard<std::mutex> lock(mu_);
    return expired_;
  }

  FakeClock clock_;
  std::mutex mu_;
  std::vector<std::string> expired_;
  LeaseKeeper keeper_{clock_, [this](const std::string& id) {
                        std::lock_guard<std::mutex> lock(mu_);
                        expired_.push_back(id);
                      }};
};

TEST_F(LeaseKeeperTest, ExpiresOnceDeadlinePasses) {
  keeper_.Set("f1", clock_.Now() + seconds(10));
  clock_.Advance(seconds(9));
  EXPECT_TRUE(keeper_.CheckExpired().empty());
  clock_.Advance(seconds(1));
  EXPECT_EQ(keeper_.CheckExpired(), std::vector<std::string>{"f1"});
  EXPECT_EQ(Expired(), std::vector<std::string>{"f1"});
  // Expiry consumes the lease: it fires once.
  clock_.Advance(seconds(10));
  EXPECT_TRUE(keeper_.CheckExpired().empty());
  EXPECT_FALSE(keeper_.Deadline("f1").has_value());
}

TEST_F(LeaseKeeperTest, RenewPostponesExpiry) {
  keeper_.Set("f1", clock_.Now() + seconds(10));
  clock_.Advance(seconds(8));
  ASSERT_TRUE(keeper_.Renew("f1", clock_.Now() + seconds(10)));
  clock_.Advance(seconds(8));
  EXPECT_TRUE(keeper_.CheckExpired().empty());
  clock_.Advance(seconds(2));
  EXPECT_EQ(keeper_.CheckExpired(), std::vector<std::string>{"f1"});
}

TEST_F(LeaseKeeperTest, RemoveCancelsExpiry) {
  keeper_.Set("f1", clock_.Now() + seconds(1));
  keeper_.Remove("f1");
  keeper_.Remove("f1");  // idempotent
  clock_.Advance(seconds(5));
  EXPECT_TRUE(keeper_.CheckExpired().empty());
  EXPECT_TRUE(Expired().empty());
}

TEST_F(LeaseKeeperTest, RenewOfUnknownOrExpiredLeaseFails) {
  EXPECT_FALSE(keeper_.Renew("nope", clock_.Now() + seconds(1)));
  keeper_.Set("f1", clock_.Now() + seconds(1));
  clock_.Advance(seconds(1));
  keeper_.CheckExpired();
  EXPECT_FALSE(keeper_.Renew("f1", clock_.Now() + seconds(1)));
}

TEST_F(LeaseKeeperTest, ExpiresOnlyLeasesPastDueEarliestFirst) {
  keeper_.Set("late", clock_.Now() + seconds(3));
  keeper_.Set("early", clock_.Now() + seconds(1));
  keeper_.Set("later", clock_.Now() + seconds(60));
  clock_.Advance(seconds(5));
  EXPECT_EQ(keeper_.CheckExpired(), (std::vector<std::string>{"early", "late"}));
  EXPECT_TRUE(keeper_.Deadline("later").has_value());
}

TEST(LeaseKeeperThreadTest, ThreadFiresCallbackWhenDeadlinePasses) {
  std::promise<std::string> fired;
  std::once_flag once;
  LeaseKeeper keeper(SystemClock::Instance(), [&](const std::string& id) {
    std::call_once(once, [&] { fired.set_value(id); });
  });
  keeper.Start();
  // Set after Start: the thread must be woken by the change, not by a timeout.
  keeper.Set("f1", SystemClock::Instance().Now() + milliseconds(20));
  std::future<std::string> result = fired.get_future();
  ASSERT_EQ(result.wait_for(seconds(30)), std::future_status::ready);
  EXPECT_EQ(result.get(), "f1");
  keeper.Stop();
}

}  // namespace
}  // namespace faultline::agent
