#include "agent/host/fault_tables.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "agent/host/deadman_switch.h"
#include "tests/unit/agent/host/fake_nft_tables.h"

namespace faultline::agent::host {
namespace {

// What `nft -e -a` prints for a create batch: the leftover table (handle 4) is deleted in the
// same batch; the table that stays has handle 5 and its objects 1..4.
constexpr const char* kEcho =
    "add table inet faultline_f1 # handle 4\n"
    "add table inet faultline_f1 # handle 5\n"
    "add set inet faultline_f1 faultline_alive { # handle 1 type mark; flags timeout; }\n"
    "add counter inet faultline_f1 matched { # handle 2 packets 0 bytes 0 }\n"
    "add chain inet faultline_f1 out { type filter hook output priority filter; } # handle 3\n"
    "add rule inet faultline_f1 out meta mark & 0x00000000 == @faultline_alive drop # handle 4\n";

// `list table` with handles after someone added a rule to our chain and a chain of their own.
constexpr const char* kListingWithForeign =
    "table inet faultline_f1 { # handle 5\n"
    "\tcounter matched { # handle 2\n"
    "\t\tpackets 0 bytes 0\n"
    "\t}\n"
    "\n"
    "\tset faultline_alive { # handle 1\n"
    "\t\ttype mark\n"
    "\t\tflags timeout\n"
    "\t\telements = { 0x00000000 timeout 3s expires 2s }\n"
    "\t}\n"
    "\n"
    "\tchain out { # handle 3\n"
    "\t\ttype filter hook output priority filter; policy accept;\n"
    "\t\tmeta mark & 0x00000000 == @faultline_alive drop # handle 4\n"
    "\t\tip daddr { 10.0.0.1, 10.0.0.2 } counter accept # handle 6\n"
    "\t}\n"
    "\n"
    "\tchain theirs { # handle 7\n"
    "\t}\n"
    "}\n";

TEST(FaultTablesTest, OwnershipIsTheLastTableHandleAndTheHighestObjectHandle) {
  auto owned = OwnershipFromEcho("inet", "faultline_f1", kEcho);
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  EXPECT_EQ(owned->table_handle, 5u);
  EXPECT_EQ(owned->max_handle, 4u);
  EXPECT_FALSE(OwnershipFromEcho("inet", "faultline_f1", "add rule x # handle 3\n").ok());
}

TEST(FaultTablesTest, ListingNamesEveryObjectAndRuleWithItsHandle) {
  auto listed = ParseTableListing(kListingWithForeign);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->handle, 5u);
  std::vector<std::string> got;
  for (const auto& o : listed->objects) {
    got.push_back(o.kind + ":" + o.name + ":" + std::to_string(o.handle));
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"counter:matched:2", "set:faultline_alive:1", "chain:out:3",
                                      "rule:out:4", "rule:out:6", "chain:theirs:7"}));
}

TEST(FaultTablesTest, UntouchedTableIsDeletedWholeByHandle) {
  TableOwnership owned{"inet", "faultline_f1", 5, 7};
  auto listed = ParseTableListing(kListingWithForeign);
  ASSERT_TRUE(listed.ok());
  RevertPlan plan = PlanRevert(owned, *listed);
  EXPECT_TRUE(plan.whole_table);
  EXPECT_TRUE(plan.foreign.empty());
}

TEST(FaultTablesTest, TableOfTheSameNameMadeBySomeoneElseIsNotTouched) {
  TableOwnership owned{"inet", "faultline_f1", 9, 4};
  auto listed = ParseTableListing(kListingWithForeign);
  ASSERT_TRUE(listed.ok());
  RevertPlan plan = PlanRevert(owned, *listed);
  EXPECT_TRUE(plan.not_ours);
  EXPECT_FALSE(plan.whole_table);
  EXPECT_TRUE(plan.delete_rules.empty());
  EXPECT_TRUE(plan.delete_each.empty());
}

TEST(FaultTablesTest, ForeignRulesAndChainsStayOnlyOursAreDeleted) {
  TableOwnership owned{"inet", "faultline_f1", 5, 4};
  auto listed = ParseTableListing(kListingWithForeign);
  ASSERT_TRUE(listed.ok());
  RevertPlan plan = PlanRevert(owned, *listed);
  EXPECT_FALSE(plan.whole_table);
  ASSERT_EQ(plan.foreign.size(), 2u);
  EXPECT_EQ(plan.delete_rules, "delete rule inet faultline_f1 out handle 4\n");
  // Chain `out` holds a foreign rule: deleting it would delete that rule too, so it stays.
  EXPECT_EQ(plan.delete_each,
            (std::vector<std::string>{"delete counter inet faultline_f1 handle 2\n",
                                      "delete set inet faultline_f1 handle 1\n"}));
}

TEST(FaultTablesTest, RecordRoundTrips) {
  TableOwnership owned{"inet", "faultline_f1", 5, 4};
  auto parsed = ParseOwnership(FormatOwnership(owned));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, owned);
  EXPECT_FALSE(ParseOwnership("faultline-table v1\nfamily inet\nname x;drop\nhandle 5\n").ok());
}

class FaultTablesFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fault_tables_test." + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    nft_ = std::make_shared<FakeNftTables>();
    nft_->outputs["add table inet faultline_f1"] = kEcho;
    tables_ = std::make_unique<FaultTables>(
        nft_, std::make_shared<DeadmanSwitch>(std::chrono::minutes(1)), dir_.string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::shared_ptr<FakeNftTables> nft_;
  std::unique_ptr<FaultTables> tables_;
};

TEST_F(FaultTablesFakeTest, CreateArmsTheBatchAndRecordsOwnership) {
  auto owned = tables_->Create("inet", "faultline_f1",
                               "add table inet faultline_f1\nadd chain inet faultline_f1 out\n"
                               "add rule inet faultline_f1 out drop\n");
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  EXPECT_EQ(owned->table_handle, 5u);
  ASSERT_EQ(nft_->batches.size(), 1u);
  EXPECT_NE(nft_->batches[0].find("add rule inet faultline_f1 out meta mark & 0x0 "
                                  "@faultline_alive drop"),
            std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "faultline_f1.table"));
}

TEST_F(FaultTablesFakeTest, RevertOfAnUntouchedTableDeletesItByHandle) {
  auto owned = tables_->Create("inet", "faultline_f1", "add table inet faultline_f1\n");
  ASSERT_TRUE(owned.ok());
  nft_->outputs["list table inet faultline_f1"] =
      "table inet faultline_f1 { # handle 5\n\tchain out { # handle 3\n\t}\n}\n";
  ASSERT_TRUE(tables_->Revert(*owned).ok());
  EXPECT_EQ(nft_->batches.back(), "delete table inet handle 5\n");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "faultline_f1.table"));
}

TEST_F(FaultTablesFakeTest, CreateNeverReplacesATableOfThatNameItDidNotMake) {
  nft_->AddForeignTable("inet", "faultline_f1");
  auto owned = tables_->Create("inet", "faultline_f1", "add table inet faultline_f1\n");
  EXPECT_EQ(owned.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(nft_->HasTable("inet", "faultline_f1"));
  for (const auto& b : nft_->batches) EXPECT_EQ(b.find("delete"), std::string::npos) << b;
}

TEST_F(FaultTablesFakeTest, OrphanWithoutARecordIsLeftAlone) {
  nft_->AddForeignTable("inet", "faultline_other");
  nft_->batches.clear();
  ASSERT_TRUE(tables_->RevertOrphan("inet", "faultline_other").ok());
  auto swept = tables_->Sweep("faultline_");
  ASSERT_TRUE(swept.ok());
  EXPECT_TRUE(swept->empty());
  for (const auto& b : nft_->batches) EXPECT_EQ(b.find("delete"), std::string::npos) << b;
  EXPECT_TRUE(nft_->HasTable("inet", "faultline_other"));
}

}  // namespace
}  // namespace faultline::agent::host
