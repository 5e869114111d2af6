#include "agent/netfilter/netem_probe.h"

namespace faultline::agent::netfilter {
namespace {

using namespace std::chrono_literals;
constexpr auto kTimeout = 5s;

std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.empty() ? "no message" : line;
}

}  // namespace

NetemCapability DetectNetem(const ProcessRunner& run, const std::string& probe_device) {
  // A probe device left by a crash mid-probe: ours by name, so it may go.
  (void)run({"ip", "link", "del", probe_device}, kTimeout);
  // A veth pair: this project's reference kernel has veth but no dummy driver.
  auto added =
      run({"ip", "link", "add", probe_device, "type", "veth", "peer", "name", probe_device + "p"},
          kTimeout);
  if (!added.ok()) return {false, "cannot run ip: " + added.status().message()};
  if (added->exit_code != 0) {
    return {false, "cannot create a veth pair to probe netem: " + FirstLine(added->err)};
  }
  NetemCapability c;
  auto qdisc =
      run({"tc", "qdisc", "add", "dev", probe_device, "root", "netem", "delay", "1ms"}, kTimeout);
  if (!qdisc.ok()) {
    c = {false, "cannot run tc: " + qdisc.status().message()};
  } else if (qdisc->exit_code != 0) {
    c = {false, "tc netem refused (no sch_netem?): " + FirstLine(qdisc->err)};
  } else {
    c = {true, "sch_netem accepted a netem qdisc"};
  }
  (void)run({"ip", "link", "del", probe_device}, kTimeout);
  return c;
}

LatencyMechanism ChooseLatencyMechanism(const NetemCapability& netem,
                                        const std::string& delay_line_unavailable) {
  if (netem.available) return LatencyMechanism::kNetem;
  if (delay_line_unavailable.empty()) return LatencyMechanism::kDelayLine;
  return LatencyMechanism::kNone;
}

const char* LatencyMechanismName(LatencyMechanism m) {
  switch (m) {
    case LatencyMechanism::kNetem:
      return "netem";
    case LatencyMechanism::kDelayLine:
      return "nfqueue-delay-line";
    default:
      return "none";
  }
}

}  // namespace faultline::agent::netfilter
