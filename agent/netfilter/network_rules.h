#pragma once
// Pure rule generation for network faults: no kernel access, so it is unit-tested
// without root. NetworkBackend feeds the batches to NftRuleset.
//
// Table layout for fault <id> (family inet, name faultline_<id>):
//   counters "matched" (every packet the fault applies to) and "faulted" (dropped / rejected);
//   sets peers4/peers6 (cidrs + resolved hosts) and excl4/excl6 (exclusions), interval sets;
//   chain "out" (hook output) and chain "in" (hook input; prerouting for latency), whose first
//   rules accept the agent's control traffic, loopback (when no peers are named) and exclusions.
// Queued faults (latency, correlated loss) do not drop anything in nftables: their rules OR a mark
// bit into matching packets, and one xtables NFQUEUE rule per direction (iptables-nft, raw table,
// priority -300) queues marked packets. Chains "outq"/"inq" (priority -250, after the raw table)
// count in "bypassed" the marked packets the kernel let pass around the delay line (no listener,
// or the queue was full: fail-open); the line clears the bit from packets it releases.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/fault_backend.h"
#include "agent/host/host_addresses.h"
#include "agent/host/nft_tables.h"
#include "agent/nfqueue/delay_line.h"
#include "common/faultspec/peer_rules.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::netfilter {

// The direction after applying the kind's default (EGRESS for latency and bandwidth, BOTH else).
v1::NetworkSelector::Direction EffectiveDirection(const v1::NetworkFault& fault);

// A network fault's rules live in common/faultspec (ValidateNetworkFault there); ParseCidr too.
using faultspec::Cidr;
using faultspec::ParseCidr;
// Moved to the host layer (agent/host/nft_tables.h).
using host::NftCounter;
using host::ParseNftCounters;

struct NetworkRuleOptions {
  // The agent's gRPC port: TCP traffic from/to it is accepted before any fault rule. 0 = none.
  uint16_t control_port = 0;
  // Queued faults (QueuedFault): the mark bit ORed into packets to be queued (non-zero, one bit).
  uint32_t queue_mark = 0;
  // Queued faults: packets carrying this bit are the delay line's own reinjected copies and are
  // never marked again (0 = none).
  uint32_t bypass_mark = 0;
};

// True when the fault runs through an NFQUEUE delay line: latency, and loss with correlation
// (nftables has no per-packet state for a correlated draw).
bool QueuedFault(const v1::NetworkFault& fault);

// The nft batch that (re)creates table `table` for `fault` (validated), with `resolved` peer
// addresses (from hosts) added to the peer sets. One transaction; a leftover table of the same
// name is replaced, never duplicated.
std::string NetworkApplyBatch(const std::string& table, const v1::NetworkFault& fault,
                              const NetworkRuleOptions& options,
                              const std::vector<std::string>& resolved);

// The nft batch that replaces the peer sets' contents with fault.match.cidrs + `resolved`
// (atomic: no instant with an empty set).
std::string PeerSetUpdateBatch(const std::string& table, const v1::NetworkFault& fault,
                               const std::vector<std::string>& resolved);

// Evidence of a queued fault (latency, correlated loss) from its delay lines' counters and the
// table's "bypassed" counter, in one unit (packets as queued: GSO packets whole on hold lines,
// wire segments on reinject lines):
//   packets_matched = packets the lines received + packets_fail_open (passed around the lines);
//   packets received = packets_delayed + packets_dropped + packets_passed_over_bound
//                      + reinject_errors + packets_held.
// fidelity_compromised is 1 when any packet escaped the requested treatment (fail-open, bound,
// kernel or socket drops, failed reinjection). `latency` selects the delay keys.
Evidence QueuedFaultEvidence(const std::vector<nfqueue::DelayLineStats>& lines,
                             const NftCounter& bypassed, bool latency);

// The argv (without the program) of the xtables rule that queues marked packets, for
// iptables/ip6tables: "-t raw -A|-D OUTPUT|PREROUTING -m mark --mark M/M -m comment --comment
// faultline_<id> -j NFQUEUE --queue-num N --queue-bypass". `op` is "-A" or "-D".
std::vector<std::string> QueueRuleArgs(const std::string& op, bool egress,
                                       const std::string& comment, uint32_t mark,
                                       uint16_t queue_num);

// From `iptables -t raw -S` output, the delete argvs (without the program, "-w -t raw -D ...")
// of every rule whose comment starts with `comment` (exact: equals `comment`).
std::vector<std::vector<std::string>> QueueRuleDeletions(const std::string& listing,
                                                         const std::string& comment, bool exact);

}  // namespace faultline::agent::netfilter
