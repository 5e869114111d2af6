#include "agent/journal.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fake_backend.h"
#include "tests/unit/agent/host/host_call_gate.h"

namespace faultline::agent {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::MakeRequest;
using testing::TempDir;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto journal = Journal::Open(dir_.path() + "/state/journal");
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
  }
  void WriteRaw(const std::string& name, const std::string& bytes) {
    std::ofstream(journal_->dir() + "/" + name, std::ios::binary) << bytes;
  }

  TempDir dir_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalTest, RecordedRequestsLoadBackIdentical) {
  v1::ApplyFaultRequest a = MakeRequest("run1", "run1_0", "a.example.test");
  v1::ApplyFaultRequest b = MakeRequest("run1", "run1_1", "b.example.test", 5000);
  ASSERT_TRUE(journal_->Record(a).ok());
  ASSERT_TRUE(journal_->Record(b).ok());
  EXPECT_TRUE(std::filesystem::exists(journal_->dir() + "/run1_0.pb"));

  JournalContents contents = journal_->LoadAll();
  EXPECT_TRUE(contents.problems.empty());
  ASSERT_EQ(contents.entries.size(), 2u);
  EXPECT_TRUE(MessageDifferencer::Equals(contents.entries[0], a));
  EXPECT_TRUE(MessageDifferencer::Equals(contents.entries[1], b));
}

TEST_F(JournalTest, RecordReplacesEarlierRecordOfSameId) {
  ASSERT_TRUE(journal_->Record(MakeRequest("run1", "run1_0", "old.example.test")).ok());
  ASSERT_TRUE(journal_->Record(MakeRequest("run1", "run1_0", "new.example.test")).ok());
  JournalContents contents = journal_->LoadAll();
  ASSERT_EQ(contents.entries.size(), 1u);
  EXPECT_EQ(contents.entries[0].spec().dns().domains(0), "new.example.test");
}

TEST_F(JournalTest, RemoveDeletesRecordAndIsIdempotent) {
  ASSERT_TRUE(journal_->Record(MakeRequest("run1", "run1_0")).ok());
  EXPECT_TRUE(journal_->Remove("run1_0").ok());
  EXPECT_TRUE(journal_->Remove("run1_0").ok());
  EXPECT_TRUE(journal_->LoadAll().entries.empty());
  EXPECT_FALSE(std::filesystem::exists(journal_->dir() + "/run1_0.pb"));
}

TEST_F(JournalTest, CorruptFilesAreReportedWithoutLosingGoodRecords) {
  ASSERT_TRUE(journal_->Record(MakeRequest("run1", "run1_0")).ok());
  WriteRaw("garbage_1.pb", "\xff\xff\xff\xff not a protobuf");
  WriteRaw("empty_2.pb", "");
  // A record whose content names another fault than its file name is not trusted either.
  std::string other;
  MakeRequest("run1", "run1_9").SerializeToString(&other);
  WriteRaw("run1_5.pb", other);

  JournalContents contents = journal_->LoadAll();
  ASSERT_EQ(contents.entries.size(), 1u);
  EXPECT_EQ(contents.entries[0].fault_id(), "run1_0");
  EXPECT_EQ(contents.problems.size(), 3u);
}

TEST_F(JournalTest, QuarantinedFilesAreNoLongerLoaded) {
  WriteRaw("garbage_1.pb", "\x08\x96");
  JournalContents contents = journal_->LoadAll();
  ASSERT_EQ(contents.problems.size(), 1u);
  ASSERT_TRUE(journal_->Quarantine(contents.problems[0].path).ok());
  EXPECT_TRUE(journal_->LoadAll().problems.empty());
  EXPECT_TRUE(std::filesystem::exists(journal_->dir() + "/garbage_1.pb.corrupt"));
}

TEST_F(JournalTest, LeftoverTemporaryFilesAreIgnored) {
  WriteRaw("run1_0.pb.tmp", "half written");
  JournalContents contents = journal_->LoadAll();
  EXPECT_TRUE(contents.entries.empty());
  EXPECT_TRUE(contents.problems.empty());
}

TEST_F(JournalTest, InvalidFaultIdIsRejectedBeforeTouchingDisk) {
  EXPECT_EQ(journal_->Record(MakeRequest("run1", "../escape")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(journal_->Remove("../escape").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::is_empty(journal_->dir()));
}

// The journal's file system calls run on its HostCallPool: when a disk that stopped answering
// holds every worker, a write or an unlink fails at once instead of blocking its caller (an
// apply, a revert) with it.
TEST(JournalDeadlineTest, RecordAndRemoveFailAtOnceWhenTheDiskHoldsEveryWorker) {
  TempDir dir;
  auto pool = std::make_shared<host::HostCallPool>(
      host::HostCallPoolOptions{.name = "journal", .max_workers = 1});
  auto journal = Journal::Open(dir.path() + "/journal", JournalOptions{.pool = pool});
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  ASSERT_TRUE((*journal)->Record(MakeRequest("run1", "run1_0")).ok());

  host::testing::HostCallGate gate;
  ASSERT_TRUE(gate.HoldEveryWorker(*pool));
  Status recorded = (*journal)->Record(MakeRequest("run1", "run1_1"));
  EXPECT_EQ(recorded.code(), StatusCode::kResourceExhausted) << recorded.ToString();
  EXPECT_NE(recorded.message().find("run1_1"), std::string::npos) << recorded.message();
  EXPECT_FALSE(std::filesystem::exists((*journal)->dir() + "/run1_1.pb"));
  Status removed = (*journal)->Remove("run1_0");
  EXPECT_EQ(removed.code(), StatusCode::kResourceExhausted) << removed.ToString();
  EXPECT_TRUE(std::filesystem::exists((*journal)->dir() + "/run1_0.pb"));  // kept, not lost

  gate.Open();
  ASSERT_TRUE(pool->WaitIdle(std::chrono::seconds(10)));
  EXPECT_TRUE((*journal)->Remove("run1_0").ok());
  EXPECT_FALSE(std::filesystem::exists((*journal)->dir() + "/run1_0.pb"));
}

}  // namespace
}  // namespace faultline::agent
