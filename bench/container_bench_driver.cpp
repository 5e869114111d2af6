// Container-vs-host fault latency and many containers at once, against a real faultline-agent over
// its mTLS gRPC API (issue 14's benchmark; bench/container_bench.sh sets everything up). Not
// product code.
//
//   container_bench_driver paired ADDR TLS_DIR --label K=V --container NAME --trials N
//       N trials, each applying and reverting (a) a DNS fault (nxdomain for --dns-domain) and (b) a
//       network latency fault (--delay-us egress to --cidr) once on the agent's own host and once
//       in the one container labelled K=V (ApplyFault with a label selector: the agent's
//       discovery through the runtime's API is part of every apply), host and container
//       interleaved (the order alternates per trial). Times each ApplyFault and each RevertFault
//       from send to answer; checks every answer (ACTIVE in container NAME or on the host,
//       REVERTED after). One untimed warm-up round first. Prints every sample, then per kind and
//       operation the median and p95 on either side and the container/host ratio of the medians.
//
//   container_bench_driver fleet ADDR TLS_DIR --label K=V --expect N --trials T [--handshake]
//       T trials of what `faultline run` does for a target `workloads: {labels: {K: V}}, mode:
//       all` with one DNS fault: one ListWorkloads with the label selector (must find N), then
//       every ApplyFault at once (one per workload, selector = its id, controller/engine's
//       FanOut with the run engine's defaults), then every RevertFault at once. Times discovery +
//       all applies (to the last ack) and all reverts (to the last ack); an error or a wrong
//       final answer is counted and fails the run; retried attempts are counted and reported. With
//       --handshake it prints "applied T" after the applies and "reverted T" after the reverts and
//       waits each time for a line on stdin (the wrapper checks inside the containers meanwhile;
//       untimed).
//
// Exit 0 when every call succeeded and every answer checked out, 1 otherwise, 2 for usage.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/tls.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/fan_out.h"
#include "controller/engine/workload_selection.h"

namespace {

namespace v1 = faultline::v1;
using faultline::Result;
using faultline::engine::AgentClient;
using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

double MsSince(Clock::time_point start, Clock::time_point end = Clock::now()) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// Nearest-rank percentile (p in (0, 1]); the median of an even count is the mean of the middle two.
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  if (p == 0.5) return (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(std::max<size_t>(rank, 1), v.size()) - 1];
}

struct Common {
  std::string address;
  std::string tls_dir;
  std::vector<std::string> labels;  // K=V
  std::string dns_domain = "fault.cb.test";
};

Result<std::shared_ptr<AgentClient>> Connect(const Common& c) {
  faultline::TlsFiles files{c.tls_dir + "/ca.pem", c.tls_dir + "/operator.pem",
                            c.tls_dir + "/operator-key.pem"};
  auto creds = faultline::MakeChannelCredentials(files, faultline::Role::kAgent);
  if (!creds.ok()) return creds.status();
  auto client = std::make_shared<AgentClient>(
      faultline::engine::AgentEndpoint{"bench-agent", c.address, {}}, *creds);
  // The TLS handshake happens here, not in the first timed call.
  auto info = client->GetInfo(kDeadline);
  if (!info.ok()) return info.status();
  std::printf("agent %s, runtimes:", info->agent_id().c_str());
  for (const auto& [k, v] : info->runtimes()) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf("\n");
  return client;
}

v1::WorkloadSelector LabelSelector(const std::vector<std::string>& labels) {
  v1::WorkloadSelector s;
  s.set_runtime(v1::WorkloadSelector::DOCKER);
  for (const auto& kv : labels) {
    const auto eq = kv.find('=');
    (*s.mutable_labels())[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  return s;
}

v1::FaultSpec DnsSpec(const std::string& domain) {
  v1::FaultSpec spec;
  spec.mutable_dns()->add_domains(domain);
  spec.mutable_dns()->set_mode(v1::DnsFault::NXDOMAIN);
  return spec;
}

v1::FaultSpec LatencySpec(const std::string& cidr, uint32_t delay_us) {
  v1::FaultSpec spec;
  auto* net = spec.mutable_network();
  net->mutable_latency()->set_delay_us(delay_us);
  net->mutable_match()->add_cidrs(cidr);
  return spec;
}

int Paired(const Common& c, const std::string& container, int trials, const std::string& cidr,
           uint32_t delay_us) {
  auto client = Connect(c);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  const std::map<std::string, v1::FaultSpec> kinds = {{"dns", DnsSpec(c.dns_domain)},
                                                      {"latency", LatencySpec(cidr, delay_us)}};
  // samples[kind][place][op]
  std::map<std::string, std::map<std::string, std::map<std::string, std::vector<double>>>> samples;
  int errors = 0;
  auto once = [&](const std::string& kind, bool in_container, const std::string& id, bool record) {
    v1::ApplyFaultRequest req;
    req.set_run_id("cbench");
    req.set_fault_id(id);
    req.set_lease_ttl_ms(60'000);
    *req.mutable_spec() = kinds.at(kind);
    if (in_container) *req.mutable_workload() = LabelSelector(c.labels);
    const char* place = in_container ? "container" : "host";
    const auto t0 = Clock::now();
    auto applied = (*client)->ApplyFault(req, kDeadline);
    const double apply_ms = MsSince(t0);
    if (!applied.ok()) {
      ++errors;
      std::fprintf(stderr, "%s %s apply %s: %s\n", kind.c_str(), place, id.c_str(),
                   applied.status().ToString().c_str());
      return;
    }
    const bool where_ok = in_container ? applied->workload().kind() == "container" &&
                                             applied->workload().name() == container
                                       : !applied->has_workload();
    if (applied->state() != v1::ACTIVE || !where_ok) {
      ++errors;
      std::fprintf(stderr, "%s %s apply %s: state %d in workload '%s', want ACTIVE in '%s'\n",
                   kind.c_str(), place, id.c_str(), applied->state(),
                   applied->workload().name().c_str(), in_container ? container.c_str() : "");
    }
    const auto t1 = Clock::now();
    auto reverted = (*client)->RevertFault(id, kDeadline);
    const double revert_ms = MsSince(t1);
    if (!reverted.ok() || reverted->state() != v1::REVERTED) {
      ++errors;
      std::fprintf(stderr, "%s %s revert %s: %s\n", kind.c_str(), place, id.c_str(),
                   reverted.ok() ? "not REVERTED" : reverted.status().ToString().c_str());
      return;
    }
    if (!record) return;
    samples[kind][place]["apply"].push_back(apply_ms);
    samples[kind][place]["revert"].push_back(revert_ms);
    samples[kind][place]["apply+revert"].push_back(apply_ms + revert_ms);
    std::printf("sample %-7s %-9s apply %8.2f ms  revert %8.2f ms\n", kind.c_str(), place, apply_ms,
                revert_ms);
    std::fflush(stdout);
  };
  for (int t = -1; t < trials; ++t) {  // t = -1: warm-up, not recorded
    const std::string tag = t < 0 ? "w" : std::to_string(t);
    for (const auto& [kind, spec] : kinds) {
      for (bool first_container : {false, true}) {
        const bool in_container = first_container == (t % 2 == 0);
        once(kind, in_container, "t" + tag + kind.substr(0, 3) + (in_container ? "c" : "h"),
             t >= 0);
      }
    }
  }
  std::printf("\n%-8s %-13s %12s %10s %15s %13s %15s\n", "fault", "operation", "host_med_ms",
              "host_p95", "container_med", "container_p95", "ratio_c/h_med");
  for (const auto& [kind, spec] : kinds) {
    for (const char* op : {"apply", "revert", "apply+revert"}) {
      const auto& h = samples[kind]["host"][op];
      const auto& w = samples[kind]["container"][op];
      const double hm = Percentile(h, 0.5), wm = Percentile(w, 0.5);
      std::printf("%-8s %-13s %12.2f %10.2f %15.2f %13.2f %15.2f\n", kind.c_str(), op, hm,
                  Percentile(h, 0.95), wm, Percentile(w, 0.95), hm > 0 ? wm / hm : 0);
    }
  }
  std::printf("trials %d per side (interleaved), errors %d\n", trials, errors);
  return errors == 0 ? 0 : 1;
}

bool Handshake(bool enabled, const std::string& what, int trial) {
  if (!enabled) return true;
  std::printf("%s %d\n", what.c_str(), trial);
  std::fflush(stdout);
  std::string line;
  return static_cast<bool>(std::getline(std::cin, line)) && line == "go";
}

int Fleet(const Common& c, int expect, int trials, bool handshake) {
  auto client = Connect(c);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  namespace engine = faultline::engine;
  // The run engine's defaults (controller/engine/run_engine.h): rpc_deadline 5 s, 3 attempts,
  // 256 in flight.
  engine::FanOutOptions fan;
  std::vector<double> list_ms, apply_ms, revert_ms;
  int errors = 0, retried = 0;
  for (int t = 0; t < trials; ++t) {
    const auto t0 = Clock::now();
    auto listed = (*client)->ListWorkloads(LabelSelector(c.labels), kDeadline);
    if (!listed.ok() || listed->workloads_size() != expect) {
      std::fprintf(stderr, "trial %d: ListWorkloads: %s\n", t,
                   listed.ok() ? ("found " + std::to_string(listed->workloads_size()) + ", want " +
                                  std::to_string(expect))
                                     .c_str()
                               : listed.status().ToString().c_str());
      return 1;
    }
    const double listed_ms = MsSince(t0);
    const size_t n = listed->workloads_size();
    std::vector<v1::ApplyFaultRequest> requests(n);
    for (size_t k = 0; k < n; ++k) {
      requests[k].set_run_id("cbfleet" + std::to_string(t));
      requests[k].set_fault_id("f" + std::to_string(t) + "w" + std::to_string(k));
      *requests[k].mutable_workload() = engine::SelectorFor(listed->workloads(k));
      *requests[k].mutable_spec() = DnsSpec(c.dns_domain);
      requests[k].set_lease_ttl_ms(60'000);
    }
    std::atomic<int> attempts{0};
    auto applied = engine::FanOut<v1::FaultStatus>(
        n,
        [&](size_t k, faultline::Duration deadline, auto done) {
          ++attempts;
          (*client)->ApplyFaultAsync(requests[k], deadline, std::move(done));
        },
        fan);
    const double all_applied_ms = MsSince(t0);
    retried += attempts.load() - static_cast<int>(n);
    for (size_t k = 0; k < n; ++k) {
      const auto& r = applied[k];
      if (!r.ok() || r->state() != v1::ACTIVE || r->workload().id() != listed->workloads(k).id()) {
        ++errors;
        std::fprintf(stderr, "trial %d: apply in %s: %s\n", t, listed->workloads(k).name().c_str(),
                     r.ok() ? "wrong answer (state or workload)" : r.status().ToString().c_str());
      }
    }
    if (!Handshake(handshake, "applied", t)) return 1;
    const auto t1 = Clock::now();
    attempts = 0;
    auto reverted = engine::FanOut<v1::FaultStatus>(
        n,
        [&](size_t k, faultline::Duration deadline, auto done) {
          ++attempts;
          (*client)->RevertFaultAsync(requests[k].fault_id(), deadline, std::move(done));
        },
        fan);
    const double all_reverted_ms = MsSince(t1);
    retried += attempts.load() - static_cast<int>(n);
    for (size_t k = 0; k < n; ++k) {
      if (!reverted[k].ok() || reverted[k]->state() != v1::REVERTED) {
        ++errors;
        std::fprintf(stderr, "trial %d: revert in %s: %s\n", t, listed->workloads(k).name().c_str(),
                     reverted[k].ok() ? "not REVERTED" : reverted[k].status().ToString().c_str());
      }
    }
    list_ms.push_back(listed_ms);
    apply_ms.push_back(all_applied_ms);
    revert_ms.push_back(all_reverted_ms);
    std::printf(
        "trial %2d: %zu containers: discovery %.1f ms, discovery + all applied %.1f ms, "
        "all reverted %.1f ms\n",
        t, n, listed_ms, all_applied_ms, all_reverted_ms);
    std::fflush(stdout);
    if (!Handshake(handshake, "reverted", t)) return 1;
  }
  std::printf(
      "\n%d containers at once, %d trials: discovery (ListWorkloads) median %.1f ms; "
      "discovery + all applied median %.1f ms, p95 %.1f ms, max %.1f ms; all reverted median "
      "%.1f ms, p95 %.1f ms, max %.1f ms; errors %d, retried attempts %d\n",
      expect, trials, Percentile(list_ms, 0.5), Percentile(apply_ms, 0.5),
      Percentile(apply_ms, 0.95), Percentile(apply_ms, 1.0), Percentile(revert_ms, 0.5),
      Percentile(revert_ms, 0.95), Percentile(revert_ms, 1.0), errors, retried);
  // A retried attempt (the engine's 5 s attempt deadline passed while the apply waited in the
  // agent's queue) is reported, not a failure: the engine retries with the same fault id, which
  // the agent applies once; every call's final answer was checked above.
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"container-vs-host fault latency against a real agent (bench/container_bench.sh)"};
  app.require_subcommand(1);
  Common c;
  auto common = [&c](CLI::App* sub) {
    sub->add_option("address", c.address, "agent HOST:PORT")->required();
    sub->add_option("tls_dir", c.tls_dir, "`faultline certs init` directory")->required();
    sub->add_option("--label", c.labels, "container label K=V (repeatable)")->required();
    sub->add_option("--dns-domain", c.dns_domain, "the DNS fault's name (nxdomain)");
  };
  std::string container, cidr = "10.99.90.0/24";
  int trials = 20, expect = 50;
  uint32_t delay_us = 10'000;
  bool handshake = false;
  CLI::App* paired = app.add_subcommand("paired", "host vs one container, interleaved");
  common(paired);
  paired->add_option("--container", container, "the labelled container's name")->required();
  paired->add_option("--trials", trials);
  paired->add_option("--cidr", cidr, "the latency fault's peers");
  paired->add_option("--delay-us", delay_us, "the latency fault's delay");
  CLI::App* fleet = app.add_subcommand("fleet", "every labelled container at once");
  common(fleet);
  fleet->add_option("--expect", expect, "containers the label must find");
  fleet->add_option("--trials", trials);
  fleet->add_flag("--handshake", handshake, "stop after applies and reverts for a stdin line");
  CLI11_PARSE(app, argc, argv);
  if (paired->parsed()) return Paired(c, container, trials, cidr, delay_us);
  return Fleet(c, expect, trials, handshake);
}
