#pragma once
// Experiment parser and validator: turns an experiment YAML file (DESIGN.md §"Experiment file")
// into a validated Experiment, or into a list of diagnostics each naming file, line, column and
// field. Every problem in the file is reported, not just the first.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/experiment/experiment.h"

namespace faultline::experiment {

// One problem found in an experiment file.
struct Diagnostic {
  SourcePos pos;        // line/column 1-based; 0 when unknown (e.g. the file cannot be read)
  std::string field;    // path of the offending field, e.g. "faults[0].dns.mode"; may be empty
  std::string message;  // what is wrong and, where it helps, what is accepted

  // "file:line:col: field: message" (position and field omitted when unknown/empty).
  std::string ToString() const;
};

struct ParseOutcome {
  // Set only when there are no errors.
  std::optional<Experiment> experiment;
  std::vector<Diagnostic> errors;
  // Legal but probably not what the author meant (the experiment is still usable).
  std::vector<Diagnostic> warnings;

  bool ok() const { return errors.empty() && experiment.has_value(); }
};

// Largest experiment file accepted, in bytes; bigger files are rejected unread.
inline constexpr size_t kMaxExperimentFileBytes = 1 << 20;

// Reads and parses the experiment file at `path`. A file that cannot be read (or is larger than
// kMaxExperimentFileBytes) gives one error naming the file. Never throws; pure apart from
// reading the file, so calling it twice gives the same outcome.
ParseOutcome ParseExperimentFile(const std::string& path);

// Parses experiment YAML held in memory; `filename` is used only in diagnostics and stored as
// Experiment::source_file. Any input (including binary garbage) gives an outcome, never a crash
// or an exception.
ParseOutcome ParseExperimentText(std::string_view text, const std::string& filename);

}  // namespace faultline::experiment
