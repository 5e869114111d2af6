#include "common/process.h"

#include <gtest/gtest.h>

namespace faultline {
namespace {

using namespace std::chrono_literals;

TEST(ProcessTest, CapturesOutputAndExitCodeWithoutAShell) {
  // The argument is passed verbatim: no shell expands it.
  auto r = RunProcess({"echo", "$(id) ; x"}, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "$(id) ; x\n");
}

TEST(ProcessTest, ReportsNonZeroExit) {
  auto r = RunProcess({"false"}, 5s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_FALSE(RunChecked({"false"}).ok());
}

TEST(ProcessTest, KillsOnTimeout) {
  auto r = RunProcess({"sleep", "30"}, 200ms);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
}

TEST(ProcessTest, MissingProgramIsNotFound) {
  auto r = RunProcess({"no-such-program-faultline"}, 1s);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace faultline
