#pragma once
// ProbeSpec: what one probe does, as plain data, shared by the controller (parsed from an
// experiment, controller/experiment) and the agent (built from a ProbeRequest, agent/probe_stream).
// No validation here: the experiment parser validates what a user wrote and the agent validates
// every field it is sent (ValidateAgentProbe in common/probes/probe_limits.h).

#include <optional>
#include <string>
#include <vector>

#include "common/duration.h"

namespace faultline::probes {

struct HttpSpec {
  std::string url;
  int expect_status = 200;
  std::optional<std::string> body_regex;
  std::optional<Duration> max_latency;
};
struct TcpSpec {
  std::string host;
  int port = 0;
};
struct DnsSpec {
  std::string name;
  std::string server;  // host or host:port; empty = system resolver
  // Expected outcome: "answer" (at least one A/AAAA), or an rcode name "nxdomain", "noerror",...
  std::string expect = "answer";
  // With an empty `server`: the resolv.conf to read instead of /etc/resolv.conf. Set by the agent
  // only (a workload's /proc/PID/root/etc/resolv.conf), never from a request or an experiment.
  std::string resolv_conf;
};
struct CommandSpec {
  std::vector<std::string> argv;
  int expect_exit = 0;
  std::optional<std::string> output_regex;
};

// grpc.health.v1 Health/Check against `host:port`; SERVING is a success.
struct GrpcHealthSpec {
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

// A PromQL instant query against a Prometheus server; a success when every series of the
// result (or the scalar) satisfies `result op value`. Run by the controller only.
struct PrometheusSpec {
  std::string url;  // the server's base URL: "http://10.77.0.1:9090"
  std::string query;
  CompareOp op = CompareOp::kLt;
  double value = 0;
};

struct ProbeSpec {
  enum class Kind { kHttp, kTcp, kDns, kCommand, kGrpcHealth, kPrometheus };
  std::string name;
  Kind kind = Kind::kHttp;
  HttpSpec http;
  TcpSpec tcp;
  DnsSpec dns;
  CommandSpec command;
  GrpcHealthSpec grpc_health;
  PrometheusSpec prometheus;
  Duration timeout = std::chrono::seconds(1);
  Duration interval = std::chrono::seconds(1);
};

// "http", "tcp", "dns", "command", "grpc_health", "prometheus". Pure.
const char* ProbeKindName(ProbeSpec::Kind kind);

}  // namespace faultline::probes
