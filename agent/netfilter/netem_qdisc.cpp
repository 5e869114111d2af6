#include "agent/netfilter/netem_qdisc.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/netfilter/network_rules.h"
#include "common/atomic_file.h"

namespace faultline::agent::netfilter {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
constexpr auto kTcTimeout = 5s;
constexpr uint32_t kMaxDelayUs = 60'000'000;

const std::set<std::string>& DefaultRootKinds() {
  static const std::set<std::string> k = {"noqueue", "pfifo_fast", "fq_codel", "fq", "mq", "noop"};
  return k;
}
const std::set<std::string>& DefaultChildKinds() {
  static const std::set<std::string> k = {"pfifo_fast", "fq_codel", "fq"};
  return k;
}
// Kinds the kernel lets `tc qdisc replace ... root <kind>` re-create with default parameters.
const std::set<std::string>& RecreatableKinds() {
  static const std::set<std::string> k = {"pfifo_fast", "fq_codel", "fq"};
  return k;
}

std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.empty() ? "no message" : line;
}

Status RunTc(const ProcessRunner& run, const std::vector<std::string>& argv) {
  auto r = run(argv, kTcTimeout);
  if (!r.ok()) return Unavailable("cannot run tc: " + r.status().message());
  if (r->exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Unavailable("`" + cmd + "` failed: " + FirstLine(r->err));
  }
  return Status::Ok();
}

// The root qdisc of `device`: {kind, handle}; NOT_FOUND when the device is gone.
struct RootQdisc {
  std::string kind;
  std::string handle;
};
Result<RootQdisc> ReadRoot(const ProcessRunner& run, const std::string& device) {
  auto r = run({"tc", "-j", "qdisc", "show", "dev", device}, kTcTimeout);
  if (!r.ok()) return Unavailable("cannot run tc: " + r.status().message());
  if (r->exit_code != 0) {
    if (r->err.find("Cannot find device") != std::string::npos) {
      return NotFound("device " + device + " is gone");
    }
    return Unavailable("tc qdisc show dev " + device + ": " + FirstLine(r->err));
  }
  json j = json::parse(r->out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Unavailable("tc -j qdisc show dev " + device + ": not a JSON array");
  for (const auto& q : j) {
    if (q.is_object() && q.value("root", false)) {
      return RootQdisc{q.value("kind", std::string()), q.value("handle", std::string())};
    }
  }
  return Unavailable("tc -j qdisc show dev " + device + ": no root qdisc listed");
}

}  // namespace

Result<LatencyMechanismFlag> ParseLatencyMechanismFlag(const std::string& text) {
  if (text == "auto") return LatencyMechanismFlag::kAuto;
  if (text == "delay-line") return LatencyMechanismFlag::kDelayLine;
  if (text == "netem") return LatencyMechanismFlag::kNetem;
  return InvalidArgument("--latency-mechanism '" + text + "': expected auto, delay-line or netem");
}

std::string NetemUnsupportedReason(const v1::NetworkFault& fault) {
  if (!fault.has_latency()) return "only latency uses netem";
  if (EffectiveDirection(fault) != v1::NetworkSelector::EGRESS) {
    return "netem delays egress only (direction is not egress)";
  }
  const auto& m = fault.match();
  if (m.cidrs_size() > 0 || m.hosts_size() > 0 || m.remote_ports_size() > 0 ||
      m.local_ports_size() > 0 || m.exclude_cidrs_size() > 0 ||
      m.protocol() != v1::NetworkSelector::PROTOCOL_ANY) {
    return "the selector (peers, hosts, ports or protocol) needs per-packet matching";
  }
  if (fault.latency().jitter_us() > 0 && !fault.latency().reorder()) {
    return "netem reorders jittered packets and the fault keeps order (reorder: false)";
  }
  return "";
}

Result<std::vector<std::string>> NetemLatencyArgs(const v1::NetworkFault::Latency& l) {
  if (l.delay_us() < 1 || l.delay_us() > kMaxDelayUs) {
    return InvalidArgument("network.latency.delay_us: must be 1 us .. 60 s");
  }
  if (l.jitter_us() > l.delay_us()) {
    return InvalidArgument("network.latency.jitter_us: must not exceed delay_us");
  }
  if (l.correlation_percent() > 100) {
    return InvalidArgument("network.latency.correlation_percent: must be 0..100");
  }
  std::vector<std::string> a = {"delay", std::to_string(l.delay_us()) + "us"};
  if (l.jitter_us() > 0) {
    a.push_back(std::to_string(l.jitter_us()) + "us");
    if (l.correlation_percent() > 0) a.push_back(std::to_string(l.correlation_percent()) + "%");
    if (l.distribution() == v1::NetworkFault::Latency::NORMAL) {
      a.insert(a.end(), {"distribution", "normal"});
    }
  }
  return a;
}

bool IsValidDeviceName(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> DefaultRootQdiscKind(const std::string& tc_json) {
  json j = json::parse(tc_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return FailedPrecondition("tc -j qdisc show: not a JSON array");
  std::string root_kind;
  for (const auto& q : j) {
    if (!q.is_object()) return FailedPrecondition("tc -j qdisc show: not a list of objects");
    std::string kind = q.value("kind", std::string());
    std::string handle = q.value("handle", std::string());
    if (kind == "ingress" || kind == "clsact") continue;  // not touched by a root replace
    const bool root = q.value("root", false);
    if (handle != "0:") {
      return FailedPrecondition(std::string(root ? "root" : "child") + " qdisc " + kind + " " +
                                handle + " was configured by someone");
    }
    if (root) {
      if (DefaultRootKinds().count(kind) == 0) {
        return FailedPrecondition("root qdisc " + kind + " is not a default one");
      }
      root_kind = kind;
    } else if (DefaultChildKinds().count(kind) == 0) {
      return FailedPrecondition("child qdisc " + kind + " is not a default one");
    }
  }
  if (root_kind.empty()) return FailedPrecondition("tc -j qdisc show: no root qdisc");
  return root_kind;
}

Result<std::vector<std::string>> ParseNonLoopbackDevices(const std::string& ip_json) {
  json j = json::parse(ip_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return InvalidArgument("ip -j link show: not a JSON array");
  std::vector<std::string> out;
  for (const auto& link : j) {
    if (!link.is_object()) return InvalidArgument("ip -j link show: not a list of objects");
    std::string name = link.value("ifname", std::string());
    if (!IsValidDeviceName(name)) {
      return InvalidArgument("ip -j link show: invalid interface name '" + name + "'");
    }
    bool loopback = false, up = false;
    if (link.contains("flags") && link["flags"].is_array()) {
      for (const auto& f : link["flags"]) {
        loopback = loopback || f == "LOOPBACK";
        up = up || f == "UP";
      }
    }
    // A device that is down has no qdisc (tc lists none, ip says noop) and carries nothing.
    if (!loopback && up) out.push_back(name);
  }
  return out;
}

Result<std::vector<QdiscRecord>> PlanNetem(const ProcessRunner& run) {
  auto links = run({"ip", "-j", "link", "show"}, kTcTimeout);
  if (!links.ok()) return FailedPrecondition("cannot run ip: " + links.status().message());
  if (links->exit_code != 0) return FailedPrecondition("ip -j link show: " + FirstLine(links->err));
  auto devices = ParseNonLoopbackDevices(links->out);
  if (!devices.ok()) return FailedPrecondition(devices.status().message());
  if (devices->empty()) return FailedPrecondition("no non-loopback device");
  std::vector<QdiscRecord> records;
  for (const std::string& d : *devices) {
    auto r = run({"tc", "-j", "qdisc", "show", "dev", d}, kTcTimeout);
    if (!r.ok()) return FailedPrecondition("cannot run tc: " + r.status().message());
    if (r->exit_code != 0) {
      return FailedPrecondition("tc qdisc show dev " + d + ": " + FirstLine(r->err));
    }
    auto kind = DefaultRootQdiscKind(r->out);
    if (kind.ok() && *kind == "noop") continue;  // went down meanwhile
    if (!kind.ok()) return FailedPrecondition("device " + d + ": " + kind.status().message());
    records.push_back({d, *kind});
  }
  return records;
}

Status InstallNetem(const ProcessRunner& run, const std::vector<QdiscRecord>& records,
                    const std::vector<std::string>& netem_args, uint16_t exempt_port) {
  const std::string port = std::to_string(exempt_port);
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& dev = records[i].device;
    if (!IsValidDeviceName(dev)) {
      return InvalidArgument("netem: invalid device name '" + dev + "'");
    }
    // prio with every priority in band 2 (class fa17:2, netem); band 1 (fa17:1, a plain FIFO)
    // takes only what the filters send there: the agent's control traffic.
    std::vector<std::vector<std::string>> steps;
    std::vector<std::string> root = {"tc",     "qdisc",      "replace", "dev",   dev, "root",
                                     "handle", kNetemHandle, "prio",    "bands", "2", "priomap"};
    for (int p = 0; p < 16; ++p) root.push_back("1");
    steps.push_back(root);
    std::vector<std::string> netem = {"tc",     "qdisc",  "add",    "dev",   dev,
                                      "parent", "fa17:2", "handle", "fa18:", "netem"};
    netem.insert(netem.end(), netem_args.begin(), netem_args.end());
    steps.push_back(netem);
    if (exempt_port != 0) {
      int prio = 1;
      for (const char* family : {"ip", "ipv6"}) {
        const std::string match = std::string(family) == "ip" ? "ip" : "ip6";
        for (const char* field : {"sport", "dport"}) {
          steps.push_back({"tc", "filter", "add", "dev", dev, "parent", kNetemHandle, "protocol",
                           family, "prio", std::to_string(prio++), "u32", "match", match, field,
                           port, "0xffff", "flowid", "fa17:1"});
        }
      }
    }
    for (const auto& argv : steps) {
      Status s = RunTc(run, argv);
      if (!s.ok()) {
        // Restore every device tried so far, including this one (half set up).
        (void)RestoreQdiscs(run, {records.begin(), records.begin() + i + 1});
        return s;
      }
    }
  }
  return Status::Ok();
}

Status RestoreQdiscs(const ProcessRunner& run, const std::vector<QdiscRecord>& records) {
  Status first;
  auto note = [&first](Status s) {
    if (!s.ok() && first.ok()) first = std::move(s);
  };
  for (const QdiscRecord& r : records) {
    if (!IsValidDeviceName(r.device)) {
      note(InvalidArgument("netem: invalid device name '" + r.device + "'"));
      continue;
    }
    auto root = ReadRoot(run, r.device);
    if (!root.ok()) {
      if (root.status().code() != StatusCode::kNotFound) note(root.status());
      continue;  // a device that is gone took our qdisc with it
    }
    if (root->handle == kNetemHandle) {
      Status s = RunTc(run, {"tc", "qdisc", "del", "dev", r.device, "root"});
      if (!s.ok()) {
        note(s);
        continue;
      }
      root = ReadRoot(run, r.device);
      if (!root.ok()) {
        if (root.status().code() != StatusCode::kNotFound) note(root.status());
        continue;
      }
    }
    if (root->kind == r.kind) continue;
    if (root->handle != "0:") {
      // Someone configured the device after us: theirs now, never clobbered.
      spdlog::warn("netem: {} now has root qdisc {} {}; not restoring {}", r.device, root->kind,
                   root->handle, r.kind);
      continue;
    }
    if (RecreatableKinds().count(r.kind) == 0) {
      note(Internal("netem: " + r.device + " came back with " + root->kind + ", not " + r.kind));
      continue;
    }
    // The kernel's default qdisc changed since Apply: re-create the recorded kind.
    note(RunTc(run, {"tc", "qdisc", "replace", "dev", r.device, "root", r.kind}));
  }
  return first;
}

Result<std::vector<std::string>> SweepNetemQdiscs(const ProcessRunner& run) {
  auto links = run({"ip", "-j", "link", "show"}, kTcTimeout);
  if (!links.ok()) return Unavailable("cannot run ip: " + links.status().message());
  if (links->exit_code != 0) return Unavailable("ip -j link show: " + FirstLine(links->err));
  json j = json::parse(links->out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Unavailable("ip -j link show: not a JSON array");
  std::vector<std::string> deleted;
  Status first;
  for (const auto& link : j) {
    std::string d = link.is_object() ? link.value("ifname", std::string()) : "";
    if (!IsValidDeviceName(d)) continue;
    auto root = ReadRoot(run, d);
    if (!root.ok() || root->handle != kNetemHandle) continue;
    Status s = RunTc(run, {"tc", "qdisc", "del", "dev", d, "root"});
    if (s.ok()) {
      deleted.push_back("tc:" + d);
    } else if (first.ok()) {
      first = s;
    }
  }
  if (!first.ok()) return first;
  return deleted;
}

Status WriteQdiscRecords(const std::string& path, const std::vector<QdiscRecord>& records) {
  std::string content;
  for (const auto& r : records) content += r.device + " " + r.kind + "\n";
  Status written = WriteFileAtomically(path, content, 0600);
  if (!written.ok()) return Internal("netem: " + written.message());
  return written;
}

Result<std::vector<QdiscRecord>> ReadQdiscRecords(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("netem: no record " + path);
  std::vector<QdiscRecord> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream fields(line);
    QdiscRecord r;
    std::string extra;
    if (!(fields >> r.device >> r.kind) || (fields >> extra) || !IsValidDeviceName(r.device) ||
        (DefaultRootKinds().count(r.kind) == 0)) {
      return InvalidArgument(path + ":" + std::to_string(n) + ": expected '<device> <kind>'");
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<NetemDecision> DecideNetem(LatencyMechanismFlag flag, bool netem_detected,
                                  const v1::NetworkFault& fault, const ProcessRunner& run) {
  NetemDecision d;
  if (flag == LatencyMechanismFlag::kDelayLine) {
    d.reason = "--latency-mechanism delay-line";
  } else if (!netem_detected) {
    d.reason = "sch_netem not detected";
  } else if (std::string why = NetemUnsupportedReason(fault); !why.empty()) {
    d.reason = why;
  } else {
    auto args = NetemLatencyArgs(fault.latency());
    if (!args.ok()) return args.status();
    auto records = PlanNetem(run);
    if (records.ok()) {
      d.use = true;
      d.records = std::move(*records);
      d.args = std::move(*args);
      return d;
    }
    d.reason = records.status().message();
  }
  if (flag == LatencyMechanismFlag::kNetem) {
    return FailedPrecondition(
        "network.latency: --latency-mechanism netem, but netem cannot be used: " + d.reason);
  }
  return d;
}

Status RevertNetemOrphan(const ProcessRunner& run, const std::string& record_path) {
  auto records = ReadQdiscRecords(record_path);
  if (!records.ok()) {
    if (records.status().code() == StatusCode::kNotFound) return Status::Ok();
    return records.status();
  }
  Status s = RestoreQdiscs(run, *records);
  if (!s.ok()) return s;
  (void)::unlink(record_path.c_str());
  return Status::Ok();
}

}  // namespace faultline::agent::netfilter
