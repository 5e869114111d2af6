#include "agent/process/pause_record.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace faultline::agent::process {
namespace {

TEST(PauseRecordTest, RoundTripsThroughTheStore) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("pf-records-" + std::to_string(::getpid())) / "process")
                              .string();
  PauseRecordStore store(dir);
  auto missing = store.Read("f1");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  PauseRecord record{"/sys/fs/cgroup/a", {{42, 1000}, {43, 18446744073709551615ull}}};
  ASSERT_TRUE(store.Write("f1", record).ok());
  auto read = store.Read("f1");
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->frozen_cgroup_dir, "/sys/fs/cgroup/a");
  EXPECT_EQ((*read)->processes, record.processes);
  EXPECT_TRUE(store.Remove("f1").ok());
  EXPECT_TRUE(store.Remove("f1").ok());  // idempotent
  EXPECT_FALSE(store.Read("f1")->has_value());
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST(PauseRecordTest, RejectsCorruptRecords) {
  EXPECT_FALSE(ParsePauseRecord("").ok());
  EXPECT_FALSE(ParsePauseRecord("something else\npid 1 2\n").ok());
  EXPECT_FALSE(ParsePauseRecord("faultline-process-pause v1\npid x 2\n").ok());
  EXPECT_FALSE(ParsePauseRecord("faultline-process-pause v1\npid 1 2\n").ok());  // pid 1
  EXPECT_FALSE(ParsePauseRecord("faultline-process-pause v1\npid 5 2 extra\n").ok());
  auto ok = ParsePauseRecord("faultline-process-pause v1\npid 5 2\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->processes.size(), 1u);
}

}  // namespace
}  // namespace faultline::agent::process
