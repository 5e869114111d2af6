// HostWatcher with an injected resolver: a changed answer reaches the apply function and becomes
// the current set; an unchanged or empty answer applies nothing; a failed apply is retried; the
// thread applies changes on its own and Stop is prompt (no interval wait) and idempotent.
#include "agent/host/host_watcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace faultline::agent::host {
namespace {

using namespace std::chrono_literals;
using Addresses = std::vector<std::string>;

// A resolver whose answer the test sets; counts calls and records the hosts asked for.
struct FakeResolver {
  std::mutex mu;
  Addresses answer;
  Addresses asked;
  int calls = 0;

  HostResolver Fn() {
    return [this](const Addresses& hosts) {
      std::lock_guard lock(mu);
      ++calls;
      asked = hosts;
      return answer;
    };
  }
  void Set(Addresses a) {
    std::lock_guard lock(mu);
    answer = std::move(a);
  }
};

// Records what the watcher applied; Await blocks until `n` applies happened (or 10 s passed).
struct ApplyLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Addresses> applied;
  Status result;

  HostWatcher::ApplyFn Fn() {
    return [this](const Addresses& a) {
      std::lock_guard lock(mu);
      applied.push_back(a);
      cv.notify_all();
      return result;
    };
  }
  bool Await(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return applied.size() >= n; });
  }
};

TEST(HostWatcherTest, InitialResolutionIsTheCurrentSet) {
  FakeResolver resolver;
  resolver.Set({"10.0.0.1", "fd00::1"});
  HostWatcher w({"db.test"}, 0ms, "test", resolver.Fn());
  EXPECT_EQ(w.ResolveInitial(), (Addresses{"10.0.0.1", "fd00::1"}));
  EXPECT_EQ(resolver.asked, Addresses{"db.test"});
  EXPECT_EQ(w.addresses(), (Addresses{"10.0.0.1", "fd00::1"}));
  std::map<std::string, uint64_t> e;
  w.AddEvidence(&e);
  EXPECT_EQ(e["peer_addresses"], 2u);
  EXPECT_EQ(e["resolutions"], 0u);  // the initial resolution is not a refresh
  EXPECT_EQ(e["resolution_changes"], 0u);
}

TEST(HostWatcherTest, RefreshAppliesOnlyAChangedNonEmptyAnswer) {
  FakeResolver resolver;
  ApplyLog log;
  resolver.Set({"10.0.0.1"});
  HostWatcher w({"db.test"}, 1h, "test", resolver.Fn());
  w.ResolveInitial();
  w.Start(log.Fn());  // the 1 h interval keeps the thread from refreshing during the test
  w.RefreshOnce();    // same answer: nothing to apply
  resolver.Set({});
  w.RefreshOnce();  // nothing resolved: the last known addresses stay
  EXPECT_TRUE(log.applied.empty());
  EXPECT_EQ(w.addresses(), Addresses{"10.0.0.1"});

  resolver.Set({"10.0.0.2", "fd00::2"});
  w.RefreshOnce();
  ASSERT_EQ(log.applied.size(), 1u);
  EXPECT_EQ(log.applied[0], (Addresses{"10.0.0.2", "fd00::2"}));
  EXPECT_EQ(w.addresses(), (Addresses{"10.0.0.2", "fd00::2"}));
  EXPECT_EQ(w.resolutions(), 3u);
  EXPECT_EQ(w.changes(), 1u);
  w.Stop();
}

TEST(HostWatcherTest, FailedApplyKeepsTheOldSetAndIsRetried) {
  FakeResolver resolver;
  ApplyLog log;
  resolver.Set({"10.0.0.1"});
  HostWatcher w({"db.test"}, 1h, "test", resolver.Fn());
  w.ResolveInitial();
  w.Start(log.Fn());
  log.result = Unavailable("nft said no");
  resolver.Set({"10.0.0.9"});
  w.RefreshOnce();
  EXPECT_EQ(w.addresses(), Addresses{"10.0.0.1"});
  EXPECT_EQ(w.changes(), 0u);
  log.result = Status::Ok();
  w.RefreshOnce();
  ASSERT_EQ(log.applied.size(), 2u);
  EXPECT_EQ(w.addresses(), Addresses{"10.0.0.9"});
  EXPECT_EQ(w.changes(), 1u);
}

TEST(HostWatcherTest, ThreadAppliesAChangeOnItsOwn) {
  FakeResolver resolver;
  ApplyLog log;
  resolver.Set({"10.0.0.1"});
  HostWatcher w({"db.test"}, 1ms, "test", resolver.Fn());
  w.ResolveInitial();
  resolver.Set({"10.0.0.2"});
  w.Start(log.Fn());
  ASSERT_TRUE(log.Await(1)) << "the watcher never applied the new address";
  w.Stop();
  EXPECT_EQ(log.applied[0], Addresses{"10.0.0.2"});
  EXPECT_EQ(w.addresses(), Addresses{"10.0.0.2"});
  EXPECT_GE(w.resolutions(), 1u);
  EXPECT_EQ(w.changes(), 1u);
}

// Stop must not wait out the interval: with a one-hour interval the test would hang until CTest's
// timeout otherwise. Stop twice, and Start after Stop, are harmless.
TEST(HostWatcherTest, StopIsPromptAndIdempotent) {
  FakeResolver resolver;
  ApplyLog log;
  HostWatcher w({"db.test"}, 1h, "test", resolver.Fn());
  w.Start(log.Fn());
  w.Stop();
  w.Stop();
  w.Start(log.Fn());  // no thread any more
  w.Stop();
  EXPECT_EQ(resolver.calls, 0);
}

TEST(HostWatcherTest, NoHostsNoThreadNoEvidence) {
  FakeResolver resolver;
  HostWatcher w({}, 1ms, "test", resolver.Fn());
  EXPECT_TRUE(w.ResolveInitial().empty());
  w.Start([](const Addresses&) { return Status::Ok(); });
  w.Stop();
  EXPECT_EQ(resolver.calls, 0);
  std::map<std::string, uint64_t> e;
  w.AddEvidence(&e);
  EXPECT_TRUE(e.empty());
}

}  // namespace
}  // namespace faultline::agent::host
