// The network kind's agent module: its flags, its backend (nftables and the NFQUEUE delay line or
// netem) and the sweep of a crashed agent's NFQUEUE rules and netem qdiscs
// (agent/backend_module.h).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "agent/backend_module.h"
#include "agent/netfilter/netem_qdisc.h"
#include "agent/netfilter/network_backend.h"
#include "agent/workloads/workload.h"

namespace faultline::agent::netfilter {
namespace {

class NetworkModule final : public BackendModule {
 public:
  void AddFlags(CLI::App& app) override {
    app.add_option("--nfqueue-first", options_.queue_first,
                   "first NFQUEUE number for latency faults")
        ->capture_default_str();
    app.add_option("--nfqueue-count", options_.queue_count,
                   "NFQUEUE numbers for latency faults (1-8): at most this many latency faults")
        ->check(CLI::Range(1, 8))
        ->capture_default_str();
    app.add_option("--delay-line-rt-priority", options_.realtime_priority,
                   "SCHED_FIFO priority (1-99) for NFQUEUE delay line threads: tighter release "
                   "times on a loaded host; 0 = normal scheduling")
        ->check(CLI::Range(0, 99))
        ->capture_default_str();
    app.add_option("--latency-mechanism", latency_mechanism_,
                   "latency faults: auto (tc netem where detected and the egress devices' root "
                   "qdiscs are kernel defaults, else the NFQUEUE delay line), delay-line, or "
                   "netem (Apply fails where netem cannot be used)")
        ->capture_default_str();
  }

  Status CheckFlags() override {
    Result<LatencyMechanismFlag> mechanism = ParseLatencyMechanismFlag(latency_mechanism_);
    if (!mechanism.ok()) return mechanism.status();
    options_.latency_mechanism = *mechanism;
    return Status::Ok();
  }

  Result<std::unique_ptr<FaultBackend>> MakeBackend(const BackendEnvironment& env) override {
    options_.control_port = env.control_port;
    options_.netem_record_dir = env.state_dir + "/netem";
    options_.tables = env.tables;
    options_.guard_netem = true;
    auto backend = std::make_unique<NetworkBackend>(options_);
    backend_ = backend.get();
    return std::unique_ptr<FaultBackend>(std::move(backend));
  }

  // In a workload: its own tables, netem records per namespace, no control port to spare (the
  // agent's is not in the workload); sweeps the delay line's NFQUEUE rules there.
  Result<NetnsBackend> MakeNetnsBackend(const BackendEnvironment& env,
                                        const workloads::Workload& workload) override {
    NetworkBackendOptions here = options_;
    here.control_port = 0;
    here.tables = env.tables;
    here.netem_record_dir = env.state_dir + "/netem/" + workloads::NetnsStateName(workload.netns);
    here.guard_netem = true;
    return NetnsBackend{std::make_unique<NetworkBackend>(here),
                        [here] { return SweepQueueRules(here); }};
  }

  // The NFQUEUE rules of latency faults and netem root qdiscs (handle fa17:).
  Result<std::vector<std::string>> SweepLeftovers() override {
    auto rules = SweepQueueRules(options_);
    if (!rules.ok()) return rules;
    auto qdiscs = SweepNetemQdiscs(options_.run);
    // No ip/tc only means no netem qdisc of ours can exist: not a reason to fail recovery.
    if (qdiscs.ok()) {
      rules->insert(rules->end(), qdiscs->begin(), qdiscs->end());
    } else {
      spdlog::warn("sweep: netem qdiscs not checked: {}", qdiscs.status().message());
    }
    return rules;
  }

  void SetControlPort(uint16_t port) override {
    if (backend_ != nullptr) backend_->SetControlPort(port);
  }

 private:
  NetworkBackendOptions options_;
  std::string latency_mechanism_ = "auto";
  NetworkBackend* backend_ = nullptr;  // owned by the agent's registry, which outlives us in use
};

}  // namespace

std::unique_ptr<BackendModule> MakeBackendModule() { return std::make_unique<NetworkModule>(); }

}  // namespace faultline::agent::netfilter
