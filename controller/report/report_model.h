#pragma once
// ReportModel: the one model every renderer (text, JSON, HTML, JUnit) draws from. It mirrors the
// JSON report (DESIGN.md fixes its field names), so a report is rendered the same whether it comes
// straight from a run (FromRun) or from a saved/stored JSON document (ParseReportJson): `faultline
// run --report-html` and `faultline report FILE --format html` give byte-identical output.
// Instants are seconds from the run's start (monotonic clock), as in the JSON report.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "controller/engine/run_engine.h"

namespace faultline::report {

// Where a measured instant lies for certain, in seconds from the objective's window start (the
// same origin as time_to_detect_s / time_to_recover_s): lo <= truth <= hi, built from the samples
// around it (controller/engine/recovery_meter.h). lo may be negative for detection.
struct TimeBracket {
  double lo_s = 0;
  double hi_s = 0;
};

// An availability objective's figures (JSON `availability_objective`): good samples over the
// schedule slots of the fault window, skipped slots counted as not good.
struct AvailabilityRow {
  double min = 0;       // the limit, a share in (0, 1]
  double measured = 0;  // good / slots
  int64_t good = 0;
  int64_t slots = 0;
  int64_t skipped = 0;
};

// A latency objective's figures (JSON `latency_objective`).
struct LatencyRow {
  double percentile = 0;             // 99 = p99
  double below_s = 0;                // the bound
  std::optional<double> measured_s;  // unset: too few successful samples
  int64_t samples = 0;               // successful samples in the fault window
  int64_t failures = 0;              // failing samples in it (not counted)
  int64_t min_samples = 0;
};

struct ObjectiveRow {
  std::string name;
  std::string probe;
  // "recover_within" | "detect_within" | "availability" | "latency" (reports written before the
  // other kinds existed: recover_within).
  std::string kind = "recover_within";
  // Every kind in the same words, for every renderer: the limit ("p99 below 500ms"), what was
  // measured ("412.0ms over 238 samples") and the state: "met" | "missed" | "inconclusive" |
  // "unknown" (the verdict PASS / FAIL / FAIL because the samples cannot tell / UNKNOWN).
  // Derived from the fields below when a stored report lacks them (DescribeObjective).
  std::string limit;
  std::string measured;
  std::string state;
  std::optional<AvailabilityRow> availability_objective;
  std::optional<LatencyRow> latency_objective;
  std::string after = "inject";  // "inject" | "revert": what the window is measured from
  std::string verdict;           // "PASS" | "FAIL" | "UNKNOWN"
  double target_s = 0;
  double stable_for_s = 0;
  std::optional<double> time_to_detect_s;
  std::optional<double> time_to_recover_s;
  // JSON time_to_detect_bracket_s / time_to_recover_bracket_s: [lo, hi] or null (not measured,
  // no impact, or a report written before brackets existed).
  std::optional<TimeBracket> detect_bracket;
  std::optional<TimeBracket> recover_bracket;
  bool inconclusive = false;  // FAIL only because the recovery bracket straddles the target
  double uncertainty_s = 0;   // point ± this covers the bracket (older reports: one interval)
  double availability = 1;
  double downtime_s = 0;
  bool no_impact = false;
  int64_t samples = 0;
  int64_t failures = 0;
  std::string note;
};

// One fault on one agent.
struct FaultAgentRow {
  std::string agent;
  std::optional<double> applied_at_s;
  std::optional<double> reverted_at_s;
  std::string applied_at_wall;
  std::string reverted_at_wall;
  std::string revert_reason;
  std::map<std::string, uint64_t> evidence;
  bool state_unknown = false;
  std::string error;  // empty: none
  // The workload the fault acted in ("container orders-1 (docker 3f2a…) on fl-app"); empty: the
  // agent's host.
  std::string workload{};
};

struct FaultRow {
  std::string name;
  std::string fault_id;
  std::string kind;
  std::string target;
  std::vector<FaultAgentRow> agents;
};

struct SampleRow {
  double t_s = 0;         // sent
  double answered_s = 0;  // answered (older reports without it: t_s + latency)
  bool ok = false;
  double latency_ms = 0;
  std::string detail;
  std::string where;          // agent-side: the agent ("agent/workload" inside one); "" = here
  double clock_error_ms = 0;  // agent-side: the clock mapping's error bound (widens brackets)
};

// Where an agent-side probe ran and how well that agent's clock was mapped to the controller's.
struct ProbeSiteRow {
  std::string agent;
  double clock_offset_ms = 0;  // agent − controller
  double clock_error_ms = 0;   // error bound (half the round trip of the exchange kept)
  double clock_rtt_ms = 0;
  std::string workload;  // set when it ran inside a workload ("container x (docker …) on h")
};

struct ProbeRow {
  std::string name;
  std::string from = "controller";   // `from:` — "controller" or the target it ran from
  std::vector<ProbeSiteRow> ran_on;  // agent-side: each agent; empty: the controller
  double interval_s = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t max_in_flight = 0;       // 0: unknown (older reports)
  std::vector<SampleRow> samples;  // in send order
  std::vector<double> skipped_s;   // schedule slots not sent (in-flight bound reached, or late)
};

// A note a person attached to a run (`faultline annotate RUN`), or one the report carries.
struct Annotation {
  std::optional<double> t_s;  // seconds from the run's start; unset: only the wall time is known
  std::string at_wall;        // ISO-8601 UTC, as stored
  std::string author;
  std::string text;
};

struct ReportModel {
  std::string experiment;
  std::string run_id;
  std::string verdict;  // "PASS" | "FAIL" | "ABORTED" | "ERROR"
  int exit_code = 4;
  std::string reason;
  std::string started_at;  // ISO-8601 UTC with milliseconds; empty when unknown
  std::string ended_at;
  double duration_s = 0;
  int64_t monotonic_origin_ns = 0;
  std::optional<double> t_inject_first_s, t_inject_s, t_revert_start_s, t_revert_s;
  double t_end_s = 0;
  std::map<std::string, std::vector<std::string>> targets;  // target → agent names
  std::vector<ObjectiveRow> objectives;
  std::vector<FaultRow> faults;
  std::vector<ProbeRow> probes;
  std::vector<std::string> warnings;
  std::vector<Annotation> annotations;
};

// Fills `o.limit`, `o.measured` and `o.state` from its other fields (kind, verdict, figures).
// Pure; idempotent.
void DescribeObjective(ObjectiveRow& o);

// The model of a finished run. Pure; never fails.
ReportModel FromRun(const engine::RunResult& run);

// Parses a JSON report (as written by ToJson / --report-json, possibly by an older faultline).
// `experiment`, `run_id` and `verdict` are required; other fields default when absent. Errors:
// INVALID_ARGUMENT naming the field ("objectives[1].target_s: expected a number") or the JSON
// syntax error. `source` names the document in messages (a path, or "run <id>").
Result<ReportModel> ParseReportJson(std::string_view text, const std::string& source);

// Reads and parses a JSON report file. Errors: NOT_FOUND when it cannot be read, else as above.
Result<ReportModel> LoadReportFile(const std::string& path);

// "2026-11-22T19:17:29.123Z" (ISO-8601 UTC, milliseconds) of Unix milliseconds; empty for <= 0.
std::string IsoTime(int64_t unix_ms);

// Seconds from the run's start of an ISO-8601 UTC instant ("2026-11-22T19:03:04.250Z"), given the
// run's own start; unset when either does not parse.
std::optional<double> OffsetOfWallTime(const std::string& started_at, const std::string& at);

}  // namespace faultline::report
