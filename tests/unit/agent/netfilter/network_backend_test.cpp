// NetworkBackend over a fake NftTables (no root): the rules a fault produces and what its revert
// deletes.
#include "agent/netfilter/network_backend.h"

#include <gtest/gtest.h>

#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "tests/unit/agent/host/fake_nft_tables.h"

namespace faultline::agent::netfilter {
namespace {

class NetworkBackendFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nft_ = std::make_shared<host::FakeNftTables>();
    NetworkBackendOptions o;
    o.control_port = 7070;
    o.tables = std::make_shared<host::FaultTables>(
        nft_, std::make_shared<host::DeadmanSwitch>(std::chrono::minutes(1)), "");
    backend_ = std::make_unique<NetworkBackend>(o);
  }

  std::unique_ptr<FaultHandle> Apply(const std::string& id, const std::string& kind) {
    v1::FaultSpec spec;
    auto* n = spec.mutable_network();
    if (kind == "blackhole") n->mutable_blackhole();
    if (kind == "partition") n->mutable_partition();
    n->mutable_match()->add_cidrs("10.77.0.20");
    auto handle = backend_->Apply(id, spec);
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    return handle.ok() ? std::move(*handle) : nullptr;
  }

  // The batch that created the fault's table.
  std::string CreateBatch() const {
    for (const auto& b : nft_->batches) {
      if (b.find("add set inet faultline_f1 faultline_alive") != std::string::npos) return b;
    }
    return "";
  }

  std::shared_ptr<host::FakeNftTables> nft_;
  std::unique_ptr<NetworkBackend> backend_;
};

TEST_F(NetworkBackendFakeTest, BlackholeDropsTrafficToItsPeersOnlyWhileTheAgentLives) {
  auto handle = Apply("f1", "blackhole");
  ASSERT_NE(handle, nullptr);
  const std::string b = CreateBatch();
  EXPECT_NE(b.find("add element inet faultline_f1 peers4 { 10.77.0.20 }"), std::string::npos) << b;
  EXPECT_NE(b.find("add rule inet faultline_f1 out meta mark & 0x0 @faultline_alive ip daddr "
                   "@peers4 counter name \"matched\" counter name \"faulted\" drop"),
            std::string::npos)
      << b;
  // The control port is exempt, and that exemption lapses with the agent too.
  EXPECT_NE(b.find("add rule inet faultline_f1 out meta mark & 0x0 @faultline_alive tcp sport "
                   "7070 accept"),
            std::string::npos)
      << b;
  // Every rule of the table carries the dead-man match.
  std::istringstream lines(b);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("add rule ", 0) == 0) {
      EXPECT_NE(line.find("@faultline_alive"), std::string::npos) << line;
    }
  }
}

TEST_F(NetworkBackendFakeTest, PartitionCutsBothDirections) {
  auto handle = Apply("f1", "partition");
  ASSERT_NE(handle, nullptr);
  const std::string b = CreateBatch();
  EXPECT_NE(b.find("add rule inet faultline_f1 out meta mark & 0x0 @faultline_alive ip daddr "
                   "@peers4 counter name \"matched\" counter name \"faulted\" drop"),
            std::string::npos)
      << b;
  EXPECT_NE(b.find("add rule inet faultline_f1 in meta mark & 0x0 @faultline_alive ip saddr "
                   "@peers4 counter name \"matched\" counter name \"faulted\" drop"),
            std::string::npos)
      << b;
}

TEST_F(NetworkBackendFakeTest, RevertDeletesOnlyItsOwnTableByHandle) {
  nft_->AddForeignTable("inet", "filter");
  auto handle = Apply("f1", "blackhole");
  ASSERT_NE(handle, nullptr);
  ASSERT_TRUE(nft_->HasTable("inet", "faultline_f1"));
  ASSERT_TRUE(handle->Revert().ok());
  EXPECT_FALSE(nft_->HasTable("inet", "faultline_f1"));
  EXPECT_TRUE(nft_->HasTable("inet", "filter"));
  EXPECT_EQ(nft_->batches.back().rfind("delete table inet handle ", 0), 0u) << nft_->batches.back();
  // Idempotent: a second revert deletes nothing more.
  const size_t before = nft_->batches.size();
  ASSERT_TRUE(handle->Revert().ok());
  EXPECT_EQ(nft_->batches.size(), before);
}

TEST_F(NetworkBackendFakeTest, RevertLeavesATableOfTheSameNameSomeoneElseMade) {
  auto handle = Apply("f1", "blackhole");
  ASSERT_NE(handle, nullptr);
  // Someone deletes our table and makes their own with the same name (a new handle).
  ASSERT_TRUE(nft_->DeleteTable("inet", "faultline_f1").ok());
  nft_->AddForeignTable("inet", "faultline_f1");
  ASSERT_TRUE(handle->Revert().ok());
  EXPECT_TRUE(nft_->HasTable("inet", "faultline_f1"));
  for (size_t i = nft_->batches.size() - 2; i < nft_->batches.size(); ++i) {
    EXPECT_EQ(nft_->batches[i].find("delete"), std::string::npos) << nft_->batches[i];
  }
}

}  // namespace
}  // namespace faultline::agent::netfilter
