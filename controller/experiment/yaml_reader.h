#pragma once
// The generic part of the experiment parser (internal to controller/experiment): reading YAML
// nodes into typed values with a diagnostic for every problem, each naming file:line:column and
// the field's path. Knows nothing about experiments; the section readers (parser.cpp,
// probe_reader.cpp) and the fault kinds' readers (kinds/) build on it.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/labels.h"
#include "controller/experiment/parser.h"

namespace faultline::experiment {

// At most this many errors are kept per file; a hostile file can hold thousands of mistakes.
inline constexpr size_t kMaxErrors = 100;
inline constexpr size_t kMaxRegexLength = 1024;

// User text echoed in messages, cut to `max_chars` and made printable (\xNN for other bytes).
std::string Printable(std::string_view s, size_t max_chars = 64);
// Printable(s) in single quotes.
std::string Quoted(std::string_view s);

// [a-z0-9-]{1,63}: names of experiments, targets, faults, probes and objectives.
bool IsName(std::string_view s);
inline constexpr const char* kNameRule = "must be 1-63 characters of a-z, 0-9 and '-'";
// Label keys and values: the one rule agents use too (common/labels.h).
using ::faultline::IsLabelToken;
inline constexpr const char* kLabelRule = kLabelTokenRule;

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(std::string_view a, std::string_view b);
// "a, b or c".
std::string JoinList(const std::vector<std::string>& items);
// "a mapping", "a list", "a string", "nothing" ...: what a node is, for messages.
std::string KindOf(const YAML::Node& n);
// Decimal integer in [lo, hi]; no sign other than a leading '-', no spaces.
std::optional<int64_t> ParseInt(std::string_view s, int64_t lo, int64_t hi);
// tc's rate units (bit/kbit/mbit/gbit bits per second, bps/kbps/mbps/gbps bytes per second), in
// bytes per second.
std::optional<uint64_t> ParseRate(std::string_view s);
// Sizes: b, kb, mb (powers of 1024, as tc); a bare number is bytes.
std::optional<uint64_t> ParseBytes(std::string_view s);

// A duration as a count of `Unit`, saturated at UINT32_MAX (so an out-of-range value stays out of
// range for the validation that follows instead of wrapping).
template <typename Unit>
uint32_t ClampedCount(Duration d) {
  auto n = std::chrono::duration_cast<Unit>(d).count();
  if (n < 0) return 0;
  if (static_cast<uint64_t>(n) > std::numeric_limits<uint32_t>::max()) {
    return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<uint32_t>(n);
}

// A key → value view of one YAML mapping that has already been checked for unknown, duplicate
// and non-scalar keys.
struct MapField {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Reads typed values out of YAML nodes, collecting diagnostics. Every reading method reports its
// own problem (at the node, with `field` as the path) and returns nullopt/false/nullptr then.
// Not thread-safe; one per file.
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  size_t error_count() const { return errors_.size(); }

  // ---- diagnostics ----
  SourcePos Pos(const YAML::Mark& m) const;
  // An empty value (`duration:`) is reported at its key, where the author looks.
  SourcePos Pos(const YAML::Node& n) const;
  void Error(const SourcePos& pos, std::string field, std::string message);
  void Error(const YAML::Node& at, std::string field, std::string message);
  void Warn(const YAML::Node& at, std::string field, std::string message);

  static std::string Sub(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static std::string Index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

  // ---- structure ----
  // The one field of `fields` whose key is one of `kinds` (a oneof written as alternative keys).
  // None: `missing` is reported at `n`; several: the second is reported, naming the first.
  const MapField* OneKind(const std::vector<MapField>& fields, const YAML::Node& n,
                          const std::string& path, const std::vector<std::string_view>& kinds,
                          const std::string& what, const std::string& missing);
  // `n` as a mapping whose keys are unique scalars from `allowed` (unknown keys get a "did you
  // mean"); nullopt when `n` is not a mapping.
  std::optional<std::vector<MapField>> Map(const YAML::Node& n, const std::string& path,
                                           const std::vector<std::string_view>& allowed);
  // A mapping with free-form keys; `accept_key` reports and rejects bad keys.
  std::optional<std::vector<MapField>> MapOf(
      const YAML::Node& n, const std::string& path,
      const std::function<bool(const YAML::Node&, const std::string&)>& accept_key);
  static const YAML::Node* Find(const std::vector<MapField>& fields, std::string_view key);
  // Like Find, but a missing (or null) field is an error reported at the enclosing mapping.
  const YAML::Node* Need(const std::vector<MapField>& fields, const YAML::Node& map,
                         const std::string& path, std::string_view key);
  // A list (non-empty when `non_empty`).
  bool List(const YAML::Node& n, const std::string& path, bool non_empty);

  // ---- values ----
  std::optional<std::string> String(const YAML::Node& n, const std::string& field);
  std::optional<int64_t> Int(const YAML::Node& n, const std::string& field, int64_t lo, int64_t hi);
  // A duration (common/duration.h syntax), > 0 when `strictly_positive` (else >= 0), at most
  // `max` when given.
  std::optional<Duration> Dur(const YAML::Node& n, const std::string& field, bool strictly_positive,
                              std::optional<Duration> max = std::nullopt);
  std::optional<std::string> Name(const YAML::Node& n, const std::string& field);
  std::optional<std::string> Regex(const YAML::Node& n, const std::string& field);
  // label → value mapping, both IsLabelToken.
  std::map<std::string, std::string> Labels(const YAML::Node& n, const std::string& path);
  // A share written 0.3 or 30%, as a fraction (30% = 0.3); >= 0. The range a field allows is the
  // field's own rule (common/faultspec for fault fields).
  std::optional<double> Share(const YAML::Node& n, const std::string& field);
  // A duration in whole milliseconds (saturated, see ClampedCount); > 0 when `positive`.
  std::optional<uint32_t> Millis(const YAML::Node& n, const std::string& field, bool positive);

 protected:
  std::string file_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  std::vector<std::pair<YAML::Node, YAML::Mark>> null_values_;
  bool too_many_errors_ = false;
};

}  // namespace faultline::experiment
