// FaultTables on the real kernel (libnftables), in a network namespace of the test's own: a
// revert never deletes a table, chain or rule the agent did not create. Needs root (skipped
// otherwise); labelled `integration`.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nft_ruleset.h"

namespace faultline::agent::host {
namespace {

constexpr const char* kOurs =
    "add table inet faultline_kt\n"
    "add counter inet faultline_kt matched\n"
    "add set inet faultline_kt peers4 { type ipv4_addr; flags interval; }\n"
    "add chain inet faultline_kt out { type filter hook output priority 0; policy accept; }\n"
    "add rule inet faultline_kt out ip daddr @peers4 counter name \"matched\" drop\n";

class FaultTablesKernelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) in_own_netns_ = ::unshare(CLONE_NEWNET) == 0;
  }
  void SetUp() override {
    if (!in_own_netns_) GTEST_SKIP() << "needs root (a network namespace of its own)";
    nft_ = std::make_shared<NftRuleset>();
    tables_ = std::make_unique<FaultTables>(
        nft_, std::make_shared<DeadmanSwitch>(std::chrono::minutes(1)), "");
    (void)nft_->DeleteTable("inet", "faultline_kt");
  }
  std::string Listing() {
    auto l = nft_->RunWithOutput("list table inet faultline_kt");
    return l.ok() ? *l : "";
  }
  bool Exists() {
    auto t = nft_->ListTables("faultline_kt");
    return t.ok() && !t->empty();
  }

  static inline bool in_own_netns_ = false;
  std::shared_ptr<NftRuleset> nft_;
  std::unique_ptr<FaultTables> tables_;
};

TEST_F(FaultTablesKernelTest, UntouchedTableIsDeletedWhole) {
  auto owned = tables_->Create("inet", "faultline_kt", kOurs);
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  EXPECT_NE(Listing().find("@faultline_alive"), std::string::npos);
  ASSERT_TRUE(tables_->Revert(*owned).ok());
  EXPECT_FALSE(Exists());
  EXPECT_TRUE(tables_->Revert(*owned).ok());  // idempotent
}

TEST_F(FaultTablesKernelTest, SomeoneElsesRulesAndChainsInOurTableSurviveTheRevert) {
  auto owned = tables_->Create("inet", "faultline_kt", kOurs);
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  // Someone else uses our table: a rule in our chain, a chain of theirs using our set.
  ASSERT_TRUE(nft_->Run("add rule inet faultline_kt out tcp dport 4242 counter accept\n"
                        "add chain inet faultline_kt theirs\n"
                        "add rule inet faultline_kt theirs ip saddr @peers4 accept\n")
                  .ok());
  ASSERT_TRUE(tables_->Revert(*owned).ok());
  ASSERT_TRUE(Exists()) << "the table others use was deleted";
  const std::string l = Listing();
  EXPECT_NE(l.find("tcp dport 4242"), std::string::npos) << l;
  EXPECT_NE(l.find("chain theirs"), std::string::npos) << l;
  EXPECT_NE(l.find("ip saddr @peers4 accept"), std::string::npos) << l;
  // Ours is gone: the drop rule, the counter, the dead-man set.
  EXPECT_EQ(l.find("drop"), std::string::npos) << l;
  EXPECT_EQ(l.find("counter matched"), std::string::npos) << l;
  EXPECT_EQ(l.find("faultline_alive"), std::string::npos) << l;
  (void)nft_->DeleteTable("inet", "faultline_kt");
}

TEST_F(FaultTablesKernelTest, TableOfTheSameNameMadeBySomeoneElseIsLeftAlone) {
  auto owned = tables_->Create("inet", "faultline_kt", kOurs);
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  ASSERT_TRUE(nft_->Run("delete table inet faultline_kt\nadd table inet faultline_kt\n"
                        "add chain inet faultline_kt theirs\n")
                  .ok());
  ASSERT_TRUE(tables_->Revert(*owned).ok());
  ASSERT_TRUE(Exists()) << "a table this agent did not create was deleted";
  EXPECT_NE(Listing().find("chain theirs"), std::string::npos);
  (void)nft_->DeleteTable("inet", "faultline_kt");
}

}  // namespace
}  // namespace faultline::agent::host
