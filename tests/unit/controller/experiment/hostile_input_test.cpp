// The hand-made hostile corpus of the fuzz target (tests/fuzz/corpus/experiment_parser): every
// hostile file is rejected with an error that names the field and says what is wrong, and the
// valid seed stays valid (so the corpus keeps exercising the whole validator).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/experiment/parser.h"

namespace faultline::experiment {
namespace {

struct HostileCase {
  const char* file;
  const char* error;  // a substring of the first error's "field: message"
};

const std::vector<HostileCase>& Cases() {
  static const std::vector<HostileCase> cases = {
      {"deep-nesting.yaml", "YAML nested too deeply"},
      {"deep-nesting-block.yaml", "YAML nested too deeply"},
      {"yaml-alias-bomb.yaml", "unknown field 'a'"},
      {"not-yaml.yaml", "the file must be a YAML mapping"},
      {"huge-duration.yaml", "faults[0].duration: duration '99999999999999999999h' is too long"},
      {"huge-duration-overflow.yaml", "objectives[0].recover_within: duration"},
      {"negative-duration.yaml", "faults[0].duration: invalid duration '-20s'"},
      {"shell-in-name.yaml", "faults[0].name: 'x;$(reboot)' must be 1-63 characters"},
      {"shell-in-experiment-name.yaml", "metadata.name: '`rm -rf /`;$(id)' must be"},
      {"shell-in-domain.yaml", "faults[0].dns.domains[0]: domain"},
      {"long-label.yaml", "metadata.labels.team: label value 'xxxx"},
      {"long-label-key.yaml", "must be 1-63 characters"},
      {"nul-bytes.yaml", "label value 'or\\x00ders' must be"},
      {"negative-percent.yaml",
       "targets.app.mode: must be all, one, fixed:N (N >= 1) or percent:P"},
      {"percent-over-100.yaml", "got 'percent:250'"},
  };
  return cases;
}

std::string CorpusPath(const std::string& file) {
  return std::string(FAULTLINE_SOURCE_DIR) + "/tests/fuzz/corpus/experiment_parser/" + file;
}

TEST(HostileInputTest, EveryHostileFileGetsAClearPositionedError) {
  for (const HostileCase& c : Cases()) {
    SCOPED_TRACE(c.file);
    ParseOutcome outcome = ParseExperimentFile(CorpusPath(c.file));
    ASSERT_FALSE(outcome.ok());
    ASSERT_FALSE(outcome.errors.empty());
    const Diagnostic& first = outcome.errors.front();
    EXPECT_GT(first.pos.line, 0);
    std::string text = first.ToString();
    EXPECT_NE(text.find(c.error), std::string::npos) << text;
  }
}

TEST(HostileInputTest, ValidSeedStaysValid) {
  ParseOutcome outcome = ParseExperimentFile(CorpusPath("valid-flagship.yaml"));
  EXPECT_TRUE(outcome.ok()) << (outcome.errors.empty() ? "" : outcome.errors[0].ToString());
}

}  // namespace
}  // namespace faultline::experiment
