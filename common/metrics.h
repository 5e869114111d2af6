#pragma once
// Prometheus metrics: a registry of counter and gauge families with labels, rendered in the
// Prometheus text exposition format 0.0.4 (`# HELP`, `# TYPE`, one line per series). Shared by
// the agent, the controller daemon and the CLI's textfile output; served over HTTP by
// MetricsServer (common/metrics_server.h).
//
// Usage:
//   Registry r;
//   r.Declare("faultline_agent_faults_applied_total", MetricType::kCounter, "Faults applied.");
//   r.Increment("faultline_agent_faults_applied_total", {{"kind", "dns"}});
//   std::string text = r.Render();
//
// Values recomputed on every scrape (e.g. per-fault evidence) come from a collector: a callback
// that Render() runs first, which calls Replace() for its families.

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace faultline::metrics {

// A histogram renders as <name>_bucket{...,le="..."} (cumulative), <name>_sum and <name>_count.
enum class MetricType { kCounter, kGauge, kHistogram };

// Label name → value, in the order given (rendered in that order). Names match
// [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__"; values are any UTF-8 text.
using Labels = std::vector<std::pair<std::string, std::string>>;

// One series of a family: its labels and its value.
struct Sample {
  Labels labels;
  double value = 0;
};

// True for a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(std::string_view name);
// True for a valid label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved).
bool IsValidLabelName(std::string_view name);
// A label value as it appears between the quotes: backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view value);
// HELP text as it appears after the name: backslash and newline escaped.
std::string EscapeHelp(std::string_view help);
// A sample value: integers without a decimal point, "+Inf", "-Inf", "NaN", otherwise the
// shortest round-tripping decimal.
std::string FormatValue(double value);

// Thread-safe. Families render sorted by name, series sorted by their label list, so the text is
// deterministic for the same state.
class Registry {
 public:
  using Collector = std::function<void(Registry&)>;

  // Declares a family. Idempotent when declared again with the same type and help.
  // INVALID_ARGUMENT for a bad name or empty help; ALREADY_EXISTS when declared with a different
  // type or help.
  Status Declare(const std::string& name, MetricType type, const std::string& help);

  // Adds `delta` (>= 0) to a counter series, creating it at 0 first. INVALID_ARGUMENT for an
  // undeclared family, a gauge, a negative or NaN delta, or a bad/duplicate label name.
  Status Increment(const std::string& name, const Labels& labels, double delta = 1);

  // Sets a gauge series. INVALID_ARGUMENT for an undeclared family, a counter, or a bad label.
  Status Set(const std::string& name, const Labels& labels, double value);

  // Declares a histogram family with bucket upper bounds `bounds` (finite, strictly increasing;
  // the +Inf bucket is implicit). Idempotent when declared again with the same help and bounds.
  // INVALID_ARGUMENT for a bad name, empty help or bad bounds; ALREADY_EXISTS when declared
  // otherwise before.
  Status DeclareHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds);

  // Records one observation `value` (not NaN) in a histogram series, creating it empty first.
  // INVALID_ARGUMENT for an undeclared family, one that is not a histogram, a NaN, or a bad label
  // (including "le", which the buckets use).
  Status Observe(const std::string& name, const Labels& labels, double value);

  // Replaces every series of a family (counter or gauge) with `samples`: for values computed
  // elsewhere and copied in at scrape time. A family with no series renders only its HELP/TYPE.
  // INVALID_ARGUMENT for an undeclared family or a bad label; nothing changes on error.
  Status Replace(const std::string& name, std::vector<Sample> samples);

  // Copies the value of one series into *value; false (and *value untouched) when the family or
  // series does not exist.
  bool Get(const std::string& name, const Labels& labels, double* value) const;

  // Registers a callback that Render() runs (in registration order, without the registry's lock
  // held) before rendering. It may call Declare/Increment/Set/Replace but not Render.
  void AddCollector(Collector collector);

  // Runs the collectors, then renders every family in the text exposition format.
  std::string Render();

 private:
  struct Family {
    MetricType type = MetricType::kCounter;
    std::string help;
    std::map<Labels, double> series;
    // Histograms only: bucket bounds, and per series the count in each bucket (not cumulative;
    // one more than bounds: the +Inf bucket), the sum and the count of observations.
    struct Histogram {
      std::vector<uint64_t> buckets;
      double sum = 0;
      uint64_t count = 0;
    };
    std::vector<double> bounds;
    std::map<Labels, Histogram> histograms;
  };
  // Precondition: mu_ held.
  Result<Family*> FamilyLocked(const std::string& name, MetricType want, bool any_type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_
  std::mutex collectors_mu_;                // serialises Render's collector runs
  std::vector<Collector> collectors_;       // guarded by collectors_mu_
};

}  // namespace faultline::metrics
