// NetnsThread on the real kernel: calls run inside another network namespace while the test's
// own threads stay where they are; a path that names another namespace than the recorded one is
// refused. Needs root (skipped otherwise). The throwaway namespaces are unnamed: each is held by
// a thread of the test (/proc/self/task/TID/ns/net) and goes away with it.
#include "agent/host/netns_thread.h"

#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <latch>

#include "agent/workloads/netns_identity.h"
#include "tests/unit/agent/host/throwaway_netns.h"

namespace faultline::agent::host {
namespace {

using testing::ThrowawayNetns;

// The namespace a socket belongs to (SIOCGSKNS gives an fd of it).
Result<NetnsIdentity> SocketNetns(int sock) {
  int ns = ::ioctl(sock, SIOCGSKNS);
  if (ns < 0) return Internal("SIOCGSKNS");
  auto id = workloads::StatNetns("/proc/self/fd/" + std::to_string(ns));
  ::close(ns);
  return id;
}

class NetnsThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (setns)";
    a_ = std::make_unique<ThrowawayNetns>();
    b_ = std::make_unique<ThrowawayNetns>();
    ASSERT_FALSE(a_->path().empty());
    ASSERT_FALSE(b_->path().empty());
    auto a = workloads::StatNetns(a_->path());
    auto b = workloads::StatNetns(b_->path());
    ASSERT_TRUE(a.ok() && b.ok());
    a_id_ = *a;
    b_id_ = *b;
  }
  std::unique_ptr<ThrowawayNetns> a_, b_;
  NetnsIdentity a_id_, b_id_;
};

TEST_F(NetnsThreadTest, SocketsCreatedByACallBelongToTheNamespaceAndTheCallerStaysHome) {
  auto home = CurrentThreadNetns();
  ASSERT_TRUE(home.ok());
  ASSERT_FALSE(*home == a_id_);
  auto t = NetnsThread::Open(a_->path(), a_id_);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto fd = (*t)->Call<int>([]() -> Result<int> {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return Internal("socket");
    return s;
  });
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  auto ns = SocketNetns(*fd);
  ::close(*fd);
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(*ns, a_id_);
  // The caller (and so the agent's other threads) did not move.
  auto after = CurrentThreadNetns();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *home);
}

TEST_F(NetnsThreadTest, ThreadsStartedByACallLiveInTheNamespace) {
  auto t = NetnsThread::Open(a_->path(), a_id_);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto child_ns = (*t)->Call<NetnsIdentity>([]() -> Result<NetnsIdentity> {
    Result<NetnsIdentity> seen = Internal("not run");
    std::thread([&] { seen = CurrentThreadNetns(); }).join();
    return seen;
  });
  ASSERT_TRUE(child_ns.ok()) << child_ns.status().ToString();
  EXPECT_EQ(*child_ns, a_id_);
}

TEST_F(NetnsThreadTest, RefusesAPathThatNamesAnotherNamespaceThanTheRecordedOne) {
  auto t = NetnsThread::Open(a_->path(), b_id_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kFailedPrecondition) << t.status().ToString();
  // Negative control: the right identity is accepted.
  EXPECT_TRUE(NetnsThread::Open(b_->path(), b_id_).ok());
}

TEST_F(NetnsThreadTest, MissingPathIsNotFoundAndNoIdentityIsInvalid) {
  auto gone = NetnsThread::Open("/run/netns/fl-unit-does-not-exist", a_id_);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  auto unrecorded = NetnsThread::Open(a_->path(), NetnsIdentity{});
  EXPECT_EQ(unrecorded.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(NetnsThreadTest, ACallPastItsDeadlineReturnsAndAQueuedOneNeverRuns) {
  auto t = NetnsThread::Open(a_->path(), a_id_);
  ASSERT_TRUE(t.ok());
  std::latch release(1);
  std::atomic<bool> second_ran{false};
  Status first = (*t)->Run(
      [&release] {
        release.wait();
        return Status::Ok();
      },
      std::chrono::milliseconds(50));
  EXPECT_EQ(first.code(), StatusCode::kDeadlineExceeded);
  Status second = (*t)->Run(
      [&second_ran] {
        second_ran = true;
        return Status::Ok();
      },
      std::chrono::milliseconds(50));
  EXPECT_EQ(second.code(), StatusCode::kDeadlineExceeded);
  release.count_down();
  // The thread serves again once the blocked call returned; the dropped one never ran.
  EXPECT_TRUE((*t)->Run([] { return Status::Ok(); }).ok());
  EXPECT_FALSE(second_ran.load());
}

TEST_F(NetnsThreadTest, PathStillNamesItTurnsFalseWhenTheWorkloadIsGone) {
  auto t = NetnsThread::Open(a_->path(), a_id_);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE((*t)->PathStillNamesIt());
  a_->Release();  // the namespace's only other holder exits: its /proc path disappears
  EXPECT_FALSE((*t)->PathStillNamesIt());
  // Our thread still holds the namespace: calls keep working there (a revert can finish).
  auto id = (*t)->Call<NetnsIdentity>([] { return CurrentThreadNetns(); });
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, a_id_);
}

}  // namespace
}  // namespace faultline::agent::host
