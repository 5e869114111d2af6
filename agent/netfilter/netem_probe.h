#pragma once
// Detection of tc netem (sch_netem) and the choice of the latency mechanism. Latency prefers
// netem where the kernel has it: the kernel's own delay queue orphans packets and costs no
// user-space round trip. Where it is missing (this project's reference kernel) latency runs through
// the NFQUEUE delay line. The probe never touches an existing device or qdisc: it creates a veth
// pair of its own, tries to give it a netem root qdisc and deletes it again.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/status.h"

namespace faultline::agent::netfilter {

// Runs a program (RunProcess in production; tests pass a fake to play a kernel with or without
// sch_netem).
using ProcessRunner = std::function<Result<ProcessResult>(const std::vector<std::string>&,
                                                          std::chrono::milliseconds)>;

struct NetemCapability {
  bool available = false;
  std::string detail;  // why not, or what was found
};

// Probes netem with `ip link add <probe_device> type veth peer name <probe_device>p`, `tc qdisc
// add dev <probe_device> root netem delay 1ms`, and always `ip link del <probe_device>` (both ends)
// afterwards. available only when the qdisc was accepted. A leftover probe device of the same name
// (a crash mid-probe) is deleted first. Never fails: a missing `tc`/`ip` or veth driver is
// reported in detail.
NetemCapability DetectNetem(const ProcessRunner& run,
                            const std::string& probe_device = "flnetemprobe0");

enum class LatencyMechanism { kNetem, kDelayLine, kNone };

// netem where detected; else the delay line when it is usable (`delay_line_unavailable` empty);
// else none.
LatencyMechanism ChooseLatencyMechanism(const NetemCapability& netem,
                                        const std::string& delay_line_unavailable);

const char* LatencyMechanismName(LatencyMechanism m);

}  // namespace faultline::agent::netfilter
