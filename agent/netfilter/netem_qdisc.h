#pragma once
// The tc netem path for egress latency, used only where sch_netem was detected (netem_probe.h).
//
// Never clobbers a qdisc: netem replaces a device's root qdisc only when that root (and, under mq,
// every child) was attached by the kernel itself (handle 0:) and is of a default kind (noqueue,
// pfifo_fast, fq_codel, fq, mq). Revert deletes our root qdisc, and the kernel re-attaches its
// default, which is what was there; the recorded kind is checked and re-created when the kernel's
// default changed meanwhile. Our root is a prio qdisc with handle fa17: (netem in its default band,
// the agent's control port filtered around it), so a startup sweep finds leftovers.
// With no selector the fault is host-wide: every non-loopback device that is up gets netem, or, if
// any of them has a non-default root qdisc, none does and the delay line is used instead.
//
// tc runs through the ProcessRunner seam (argv lists only), so tests play the kernel.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/netfilter/netem_probe.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::netfilter {

// The root handle of every qdisc faultline adds (tc prints it as "fa17:").
inline constexpr const char* kNetemHandle = "fa17:";

// --latency-mechanism: auto uses netem when detected and usable for the fault, else the delay
// line; delay-line never uses netem; netem fails Apply when netem cannot be used.
enum class LatencyMechanismFlag { kAuto, kDelayLine, kNetem };

// Parses "auto" | "delay-line" | "netem"; INVALID_ARGUMENT naming the flag otherwise.
Result<LatencyMechanismFlag> ParseLatencyMechanismFlag(const std::string& text);

// A device's root qdisc as it was before netem replaced it.
struct QdiscRecord {
  std::string device;
  std::string kind;
  bool operator==(const QdiscRecord&) const = default;
};

// Why netem cannot express this fault ("" when it can): only egress latency with an empty selector
// (no peers, hosts, ports or protocol) and, when jittered, `reorder` set (netem reorders jittered
// packets). Pure.
std::string NetemUnsupportedReason(const v1::NetworkFault& fault);

// The netem arguments for a validated latency ("delay", "<d>us", ...). INVALID_ARGUMENT when a
// field is out of range. Pure.
Result<std::vector<std::string>> NetemLatencyArgs(const v1::NetworkFault::Latency& latency);

// A Linux interface name tc may be given: 1..15 chars of [A-Za-z0-9_.-], not "." or "..".
bool IsValidDeviceName(const std::string& name);

// From `tc -j qdisc show dev X` output: the root qdisc's kind when the kernel attached it and it is
// a default kind (see above); FAILED_PRECONDITION naming what is there otherwise (or unparsable).
Result<std::string> DefaultRootQdiscKind(const std::string& tc_json);

// From `ip -j link show` output: the non-loopback interface names that are up (a down device has
// no qdisc and carries nothing). INVALID_ARGUMENT on bad JSON
// or an invalid name.
Result<std::vector<std::string>> ParseNonLoopbackDevices(const std::string& ip_json);

// The devices netem would go on with their current root qdisc kinds; FAILED_PRECONDITION (the
// reason to fall back) when a device's root qdisc is not a default one or there is no device.
Result<std::vector<QdiscRecord>> PlanNetem(const ProcessRunner& run);

// Replaces each recorded device's root qdisc with `prio` (handle fa17:) whose default band holds
// `netem <args>` (handle fa18:) and whose other band, a plain FIFO, gets TCP/UDP with source or
// destination port `exempt_port` (the agent's control port, never delayed; 0 = none) through u32
// filters. On failure the devices already done are restored. Precondition: `records` from
// PlanNetem.
Status InstallNetem(const ProcessRunner& run, const std::vector<QdiscRecord>& records,
                    const std::vector<std::string>& netem_args, uint16_t exempt_port);

// Puts back each recorded root qdisc: deletes the root only while it is ours (handle fa17:), then
// checks the kind the kernel attached and re-creates the recorded one if it differs. A device that
// is gone counts as restored. Idempotent. Tries every device; returns the first error.
Status RestoreQdiscs(const ProcessRunner& run, const std::vector<QdiscRecord>& records);

// Deletes every root qdisc with handle fa17: on every device (leftovers of a crashed agent);
// returns "tc:<device>" for each one deleted. Idempotent.
Result<std::vector<std::string>> SweepNetemQdiscs(const ProcessRunner& run);

// The state file of a netem fault: "<device> <kind>" lines. Written (and fsynced) before any
// qdisc is replaced so an orphan revert after a crash can restore; removed after the restore.
Status WriteQdiscRecords(const std::string& path, const std::vector<QdiscRecord>& records);
// NOT_FOUND when the file does not exist; INVALID_ARGUMENT naming the line when malformed.
Result<std::vector<QdiscRecord>> ReadQdiscRecords(const std::string& path);

// Whether a latency fault uses netem, and what for. With flag kAuto or kNetem, netem detected and
// the fault expressible (NetemUnsupportedReason) and PlanNetem OK: use with its records and args.
// Otherwise not used, with the reason; with kNetem that is FAILED_PRECONDITION instead (Apply
// fails, nothing changed). Runs only read-only commands.
struct NetemDecision {
  bool use = false;
  std::string reason;  // why not (use == false)
  std::vector<QdiscRecord> records;
  std::vector<std::string> args;
};
Result<NetemDecision> DecideNetem(LatencyMechanismFlag flag, bool netem_detected,
                                  const v1::NetworkFault& fault, const ProcessRunner& run);

// Orphan revert (journal recovery): restores the qdiscs recorded at `record_path` and removes the
// record. No record: nothing to do (OK). Idempotent.
Status RevertNetemOrphan(const ProcessRunner& run, const std::string& record_path);

}  // namespace faultline::agent::netfilter
