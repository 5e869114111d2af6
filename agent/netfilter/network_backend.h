#pragma once
// Network fault backend: latency, loss, blackhole, reject, partition, bandwidth.
//
// Egress latency with an empty selector uses tc netem instead of the delay line where sch_netem
// was detected and every non-loopback device has a kernel-default root qdisc (netem_qdisc.h);
// evidence `mechanism_netem` says which one ran (1 netem, 0 delay line).
//
// Every fault owns nft table `inet faultline_<fault-id>` (see network_rules.h for its layout);
// revert deletes it. Latency additionally binds an NFQUEUE queue from the configured range to a
// DelayLine and adds one xtables NFQUEUE rule per direction and IP family through iptables-nft
// (`-t raw`, comment faultline_<fault-id>, --queue-bypass): this kernel's nft has no `queue`
// statement, and a libnftnl compat expression would need libnftnl-dev, which Debian's toolchain
// here lacks. Those rules are found by their comment, removed exactly on revert, and swept at
// agent start (SweepQueueRules). Host names are re-resolved while a fault is active and the
// table's peer sets replaced atomically when the answer changes.
//
// When the agent dies: the table's rules lapse with the dead-man switch (agent/host/
// deadman_switch.h); the NFQUEUE rules stay but are inert (--queue-bypass lets packets pass
// while no delay line listens, and nothing is marked once the table lapsed); a netem fault's
// qdiscs are restored by its guard process (agent/host/death_guard.h, guard_netem).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/fault_backend.h"
#include "agent/netfilter/netem_qdisc.h"

namespace faultline::agent::host {
class FaultTables;
class NftTables;
}  // namespace faultline::agent::host

namespace faultline::agent::netfilter {

struct NetworkBackendOptions {
  // The agent's gRPC port; its traffic is never faulted. 0 = set later with SetControlPort.
  uint16_t control_port = 0;
  // NFQUEUE numbers [queue_first, queue_first + queue_count) for queued faults (latency,
  // correlated loss); at most 8. A fault uses one or two (egress latency reinjects, ingress
  // holds) and the mark bit 1 << (20 + its first index); reinjected copies carry 1 << 19.
  uint16_t queue_first = 3100;
  uint16_t queue_count = 8;
  // Bound on bytes held by one delay line; beyond it packets pass undelayed (and are counted).
  uint64_t max_held_bytes = 64ull << 20;
  // SCHED_FIFO priority for delay line threads (0: default scheduling). Tighter release times on
  // a loaded host; the threads block between packets, so they cannot monopolise a core.
  int realtime_priority = 0;
  // Programs for the NFQUEUE rules (looked up in PATH).
  std::string iptables = "iptables";
  std::string ip6tables = "ip6tables";
  // Latency mechanism (netem_qdisc.h): auto = netem where detected and usable, else delay line.
  LatencyMechanismFlag latency_mechanism = LatencyMechanismFlag::kAuto;
  // Directory for netem faults' records of the qdiscs they replaced (orphan revert after a
  // crash); created on demand. "" = no record: the startup sweep (SweepNetemQdiscs) still removes
  // a crashed agent's netem qdiscs and the kernel re-attaches its default.
  std::string netem_record_dir;
  // Runs ip/tc for the netem path (tests pass a fake).
  ProcessRunner run = &RunProcess;
  // Creates and reverts the faults' nft tables (agent/host/fault_tables.h: dead-man switch,
  // ownership records); shared by every backend. Null: the backend makes its own (no records).
  std::shared_ptr<host::FaultTables> tables;
  // A netem fault (with a record) is watched by a guard process that restores the qdiscs when
  // the agent dies (agent/host/death_guard.h). Only faultline-agent itself can be the guard.
  bool guard_netem = false;
};

// Deletes every xtables rule (raw table, IPv4 and IPv6) whose comment starts with faultline_:
// leftovers of a crashed agent's latency faults. Returns the comments of deleted rules. Tries
// every rule; returns the first error when some deletion failed. Idempotent. A raw table that held
// such a rule and is left inert (no rule, no user chain, ACCEPT policies) is deleted too: it was
// created by iptables-nft for our rule.
Result<std::vector<std::string>> SweepQueueRules(const NetworkBackendOptions& options);

class NetworkBackend final : public FaultBackend {
 public:
  explicit NetworkBackend(NetworkBackendOptions options);
  ~NetworkBackend() override;

  // The agent's gRPC port, once known (when it listened on port 0). Applies to faults applied
  // afterwards. Thread-safe.
  void SetControlPort(uint16_t port) { control_port_.store(port); }

  std::string Kind() const override { return "network"; }
  // OK when nftables filter chains with numgen/reject/limit work. Latency's extra needs
  // (iptables NFQUEUE, a bindable queue) are checked and logged, and enforced at Apply.
  Status DetectCapability() override;
  Status Validate(const v1::FaultSpec& spec) const override;
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override;
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override;

  // Why latency is unavailable on this host ("" when it is). Valid after DetectCapability.
  std::string latency_unavailable_reason() const;

  struct QueueSlot;  // an allocated queue number + mark bit (internal)

 private:
  // The fault as netem root qdiscs when DecideNetem says so; a null handle to use the delay line.
  Result<std::unique_ptr<FaultHandle>> ApplyNetem(const std::string& fault_id,
                                                  const v1::NetworkFault& fault);
  Result<int> AllocateQueue();
  void ReleaseQueue(int index);

  NetworkBackendOptions options_;
  std::shared_ptr<host::NftTables> nft_;
  std::atomic<uint16_t> control_port_;
  mutable std::mutex mu_;
  std::vector<bool> queue_used_;     // guarded by mu_
  std::string latency_unavailable_;  // guarded by mu_
  bool netem_detected_ = false;      // guarded by mu_
  // Serialises netem plan + install so two faults never both take a device's default qdisc.
  std::mutex netem_mu_;
};

}  // namespace faultline::agent::netfilter
