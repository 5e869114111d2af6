#include "common/labels.h"

#include <gtest/gtest.h>

#include <string>

namespace faultline {
namespace {

TEST(LabelsTest, AcceptsTheLabelAlphabetUpTo63Characters) {
  EXPECT_TRUE(IsLabelToken("role"));
  EXPECT_TRUE(IsLabelToken("us-east-1"));
  EXPECT_TRUE(IsLabelToken("Team_A.v2"));
  EXPECT_TRUE(IsLabelToken(std::string(63, 'x')));
}

TEST(LabelsTest, RejectsEmptyTooLongAndForeignCharacters) {
  EXPECT_FALSE(IsLabelToken(""));
  EXPECT_FALSE(IsLabelToken(std::string(64, 'x')));
  for (const char* bad : {"a b", "a/b", "a=b", "a:b", "a\nb", "caf\xc3\xa9", "a\x7f"}) {
    EXPECT_FALSE(IsLabelToken(bad)) << bad;
  }
  EXPECT_FALSE(IsLabelToken(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace faultline
