// libFuzzer target: the experiment parser and validator on arbitrary bytes. Any input must give
// an outcome (never a crash, an exception, a sanitizer report or a hang), and an outcome is either
// a valid experiment or at least one error, never both and never neither.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controller/experiment/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > faultline::experiment::kMaxExperimentFileBytes) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  faultline::experiment::ParseOutcome outcome =
      faultline::experiment::ParseExperimentText(text, "fuzz.yaml");
  if (outcome.experiment.has_value() == !outcome.errors.empty()) std::abort();
  for (const auto& d : outcome.errors) {
    if (d.message.empty()) std::abort();  // every error says what is wrong
  }
  return 0;
}
