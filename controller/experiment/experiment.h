#pragma once
// The experiment model: the parsed, validated form of an experiment YAML file
// (apiVersion faultline/v1, kind Experiment). Plain data; see parser.h for how it is produced.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
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

struct HttpProbe {
  std::string url;
  int expect_status = 200;
  std::optional<std::string> body_regex;
  std::optional<Duration> max_latency;
};
struct TcpProbe {
  std::string host;
  int port = 0;
};
struct DnsProbe {
  std::string name;
  std::string server;  // host or host:port; empty = system resolver
  // Expected outcome: "answer" (at least one A/AAAA), or an rcode name "nxdomain", "noerror",...
  std::string expect = "answer";
};
struct CommandProbe {
  std::vector<std::string> argv;
  int expect_exit = 0;
  std::optional<std::string> output_regex;
};

// grpc.health.v1 Health/Check against `host:port`; SERVING is a success.
struct GrpcHealthProbe {
  std::string address;      // host:port (host a DNS name, IPv4 or [IPv6])
  std::string service;      // the service name asked about; empty = the server as a whole
  bool tls = false;         // false: plaintext
  std::string ca_file;      // PEM roots (tls; empty = the system's roots)
  std::string cert_file;    // PEM client certificate (tls; set together with key_file)
  std::string key_file;     // PEM client key
  std::string server_name;  // TLS name to verify instead of the address's host (tls)
};

// How a PromQL result is compared with the probe's value: result OP value.
enum class CompareOp { kLt, kLe, kGt, kGe, kEq, kNe };
// "<", "<=", ">", ">=", "==", "!=" → the op; anything else → nullopt. Pure.
std::optional<CompareOp> ParseCompareOp(std::string_view op);
// The op as written in an experiment ("<="). Pure.
const char* CompareOpName(CompareOp op);

// A PromQL instant query against a Prometheus server; a success when every series of the
// result (or the scalar) satisfies `result op value`.
struct PrometheusProbe {
  std::string url;  // the server's base URL: "http://10.77.0.1:9090"
  std::string query;
  CompareOp op = CompareOp::kLt;
  double value = 0;
};

struct Probe {
  enum class Kind { kHttp, kTcp, kDns, kCommand, kGrpcHealth, kPrometheus };
  std::string name;
  Kind kind = Kind::kHttp;
  HttpProbe http;
  TcpProbe tcp;
  DnsProbe dns;
  CommandProbe command;
  GrpcHealthProbe grpc_health;
  PrometheusProbe prometheus;
  Duration timeout = std::chrono::seconds(1);
  Duration interval = std::chrono::seconds(1);
  std::string from = "controller";  // or a Target name (agent-side probe)
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
