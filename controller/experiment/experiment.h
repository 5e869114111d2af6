#pragma once
// The experiment model: the parsed, validated form of an experiment YAML file
// (apiVersion faultline/v1, kind Experiment). Plain data; see parser.h for how it is produced.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/probes/probe_spec.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::experiment {

// Where a value came from in the file, for messages ("file:line:col").
struct SourcePos {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

struct TargetMode {
  enum class Kind { kAll, kOne, kFixed, kPercent };
  Kind kind = Kind::kAll;
  int value = 0;  // N for kFixed, P (1..100) for kPercent
};

struct Target {
  std::string name;
  std::map<std::string, std::string> selector;  // every label must match
  // `workloads:` — containers, pods or handles on the selected agents; `mode` then picks among the
  // matched workloads across agents instead of among agents. Unset: the agents' hosts.
  std::optional<faultline::v1::WorkloadSelector> workloads;
  TargetMode mode;
  SourcePos pos;
};

struct Fault {
  std::string name;
  std::string target;             // a Target name
  faultline::v1::FaultSpec spec;  // exactly one kind set
  Duration duration{};
  // Network partition between target groups (`partition: {to: [db_east]}`): the engine adds the
  // addresses of these targets' chosen agents (inventory) to spec.network.match before applying.
  std::vector<std::string> partition_peer_targets;
  SourcePos pos;
};

using HttpProbe = probes::HttpSpec;
using TcpProbe = probes::TcpSpec;
using DnsProbe = probes::DnsSpec;
using CommandProbe = probes::CommandSpec;
using GrpcHealthProbe = probes::GrpcHealthSpec;
using CompareOp = probes::CompareOp;
using PrometheusProbe = probes::PrometheusSpec;

// "<", "<=", ">", ">=", "==", "!=" → the op; anything else → nullopt. Pure.
std::optional<CompareOp> ParseCompareOp(std::string_view op);
// The op as written in an experiment ("<="). Pure.
const char* CompareOpName(CompareOp op);

// A probe as the experiment states it: what it does (common/probes/probe_spec.h) and where it runs.
struct Probe : probes::ProbeSpec {
  // "controller", or a Target name: the probe runs on each agent that target selects
  // (agent-side probe, its samples mapped to the controller's clock).
  std::string from = "controller";
  SourcePos pos;
};

struct SteadyState {
  std::vector<std::string> probes;              // probe names; empty = no steady-state gate
  Duration hold_for{};                          // `for:`
  Duration timeout = std::chrono::seconds(60);  // give up waiting for steady state
};

// `latency: {percentile, below, min_samples}`: the percentile of successful samples' latency
// while the fault is active must lie below a bound.
struct LatencyObjective {
  double percentile = 99;  // in (0, 100): 99 = p99, 99.9 = p99.9
  Duration below{};        // the bound (> 0)
  // Fewer successful samples than this → inconclusive (FAIL). Default: MinLatencySamples.
  int min_samples = 0;
};

// The fewest samples for which the nearest-rank `percentile` is not simply the largest sample:
// ceil(100 / (100 - percentile)) (p50: 2, p90: 10, p99: 100, p99.9: 1000). Pure.
int MinLatencySamples(double percentile);

// One objective: a probe and exactly one kind of limit.
struct Objective {
  enum class Phase { kInject, kRevert };
  // kRecover: `recover_within`; kDetect: `detect_within`; kAvailability: `availability`;
  // kLatency: `latency`. Only kRecover may be measured `after: revert`; the others are judged
  // over the fault window (from the last apply ack until revert begins).
  enum class Kind { kRecover, kDetect, kAvailability, kLatency };
  std::string name;
  std::string probe;
  Kind kind = Kind::kRecover;
  Phase after = Phase::kInject;                   // `after: inject|revert`
  Duration recover_within{};                      // kRecover
  Duration stable_for = std::chrono::seconds(0);  // kRecover
  Duration detect_within{};                       // kDetect
  double availability_min = 0;  // kAvailability: the share of samples that must be good, (0, 1]
  LatencyObjective latency;     // kLatency
  SourcePos pos;
};
// "recover_within", "detect_within", "availability", "latency": the key that states the kind.
const char* ObjectiveKindName(Objective::Kind kind);

// One abort condition: either a probe failing for a while (`probe`, `failing_for`) or a
// Prometheus alert in state firing (`prometheus_alert`, `url`, `interval`).
struct AbortCondition {
  std::string probe;  // empty for an alert condition
  Duration failing_for{};
  std::string prometheus_alert;                       // alertname; empty for a probe condition
  std::string prometheus_url;                         // the server's base URL
  Duration alert_interval = std::chrono::seconds(1);  // how often the alerts are polled
  SourcePos pos;
};

struct Experiment {
  std::string api_version;
  std::string name;
  std::string description;
  std::map<std::string, std::string> labels;
  std::vector<Target> targets;
  std::vector<Fault> faults;
  std::vector<Probe> probes;
  SteadyState steady_state;
  std::vector<Objective> objectives;
  std::vector<AbortCondition> aborts;
  // Hard cap on the whole run; exceeded → ABORTED with everything reverted. Defaults to
  // steady-state timeout + longest fault + longest after-revert objective + 60s.
  std::optional<Duration> max_duration;
  std::string source_file;

  // The probe/target with this name, or nullptr. Pointers stay valid until the vectors change.
  const Probe* FindProbe(const std::string& name) const;
  const Target* FindTarget(const std::string& name) const;
};

}  // namespace faultline::experiment
