#include "agent/host/nft_ruleset.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "tests/unit/agent/host/host_call_gate.h"

namespace faultline::agent::host {
namespace {

// Every libnftables transaction runs on the ruleset's HostCallPool: when netlink calls that never
// answered hold every worker, the next transaction fails at once, naming itself, instead of
// blocking a revert or a halt behind them. (No root needed: nothing reaches the kernel.)
TEST(NftRulesetTest, TransactionFailsAtOnceWhenStuckCallsHoldEveryWorker) {
  auto pool =
      std::make_shared<HostCallPool>(HostCallPoolOptions{.name = "nftables", .max_workers = 1});
  NftRuleset nft(NftRulesetOptions{.pool = pool});
  testing::HostCallGate gate;
  ASSERT_TRUE(gate.HoldEveryWorker(*pool));
  Status s = nft.DeleteTable("inet", "faultline_f1");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("nftables transaction 'add table inet faultline_f1'"),
            std::string::npos)
      << s.message();
  Result<std::vector<NftTable>> listed = nft.ListTables();
  EXPECT_EQ(listed.status().code(), StatusCode::kResourceExhausted);
  gate.Open();
  EXPECT_TRUE(pool->WaitIdle(std::chrono::seconds(10)));
}

}  // namespace
}  // namespace faultline::agent::host
