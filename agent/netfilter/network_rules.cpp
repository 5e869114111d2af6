#include "agent/netfilter/network_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

namespace faultline::agent::netfilter {
namespace {

using v1::NetworkFault;
using v1::NetworkSelector;

// The ICMP reject goes out with nft's "icmpx" so one rule serves IPv4 and IPv6.
constexpr const char* kRejectIcmp = "reject with icmpx type port-unreachable";

std::string Hex(uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string PortSet(const google::protobuf::RepeatedField<uint32_t>& ports) {
  std::set<uint32_t> unique(ports.begin(), ports.end());
  std::vector<std::string> items;
  for (uint32_t p : unique) items.push_back(std::to_string(p));
  return "{ " + Join(items, ", ") + " }";
}

bool HasPeers(const NetworkSelector& m) { return m.cidrs_size() > 0 || m.hosts_size() > 0; }

// Element lists for the v4 and v6 sets from cidrs + resolved, de-duplicated.
void SplitAddresses(const google::protobuf::RepeatedPtrField<std::string>& cidrs,
                    const std::vector<std::string>& resolved, std::set<std::string>* v4,
                    std::set<std::string>* v6) {
  auto add = [&](const std::string& text) {
    auto c = ParseCidr(text);
    if (!c.ok()) return;  // validated earlier; resolved addresses come from getaddrinfo
    (c->v6 ? v6 : v4)->insert(c->text);
  };
  for (const auto& c : cidrs) add(c);
  for (const auto& r : resolved) add(r);
}

std::string AddElements(const std::string& t, const std::string& set,
                        const std::set<std::string>& items) {
  if (items.empty()) return "";
  return "add element " + t + " " + set + " { " +
         Join(std::vector<std::string>(items.begin(), items.end()), ", ") + " }\n";
}

std::string L4Match(const NetworkSelector& m) {
  bool ports = m.remote_ports_size() > 0 || m.local_ports_size() > 0;
  switch (m.protocol()) {
    case NetworkSelector::TCP:
      return "meta l4proto tcp ";
    case NetworkSelector::UDP:
      return "meta l4proto udp ";
    case NetworkSelector::ICMP:
      return "meta l4proto { icmp, ipv6-icmp } ";
    default:
      return ports ? "meta l4proto { tcp, udp } " : "";
  }
}

// The match part of a rule for one direction, one per address family when peers are named.
std::vector<std::string> Matches(const NetworkSelector& m, bool egress) {
  std::string base = L4Match(m);
  if (m.remote_ports_size() > 0) {
    base += std::string("th ") + (egress ? "dport " : "sport ") + PortSet(m.remote_ports()) + " ";
  }
  if (m.local_ports_size() > 0) {
    base += std::string("th ") + (egress ? "sport " : "dport ") + PortSet(m.local_ports()) + " ";
  }
  if (!HasPeers(m)) return {base};
  const char* addr = egress ? "daddr" : "saddr";
  return {base + "ip " + addr + " @peers4 ", base + "ip6 " + addr + " @peers6 "};
}

// The verdict part(s) for the fault's kind. Each entry becomes one rule after the match.
std::vector<std::string> Actions(const NetworkFault& f, const NetworkSelector& m,
                                 const NetworkRuleOptions& o) {
  const std::string matched = "counter name \"matched\" ";
  const std::string faulted = "counter name \"faulted\" ";
  switch (f.kind_case()) {
    case NetworkFault::kBlackhole:
    case NetworkFault::kPartition:
      return {matched + faulted + "drop"};
    case NetworkFault::kLoss: {
      if (QueuedFault(f)) return {matched + "meta mark set meta mark or " + Hex(o.queue_mark)};
      long threshold = std::lround(f.loss().percent() * 100.0);
      // numgen's range is 0-9999: "< 10000" is rejected, and 100% needs no draw.
      if (threshold >= 10000) return {matched + faulted + "drop"};
      return {matched + "numgen random mod 10000 < " + std::to_string(threshold) + " " + faulted +
              "drop"};
    }
    case NetworkFault::kReject: {
      std::vector<std::string> out;
      if (m.protocol() == NetworkSelector::TCP || m.protocol() == NetworkSelector::PROTOCOL_ANY) {
        out.push_back("meta l4proto tcp " + matched + faulted + "reject with tcp reset");
      }
      if (m.protocol() != NetworkSelector::TCP) {
        std::string not_tcp =
            m.protocol() == NetworkSelector::PROTOCOL_ANY ? "meta l4proto != tcp " : "";
        out.push_back(not_tcp + matched + faulted + kRejectIcmp);
      }
      return out;
    }
    case NetworkFault::kBandwidth: {
      uint64_t rate = f.bandwidth().rate_bytes_per_second();
      uint64_t burst = f.bandwidth().burst_bytes();
      if (burst == 0) burst = std::max<uint64_t>(rate / 10, 1500);
      return {matched + "limit rate over " + std::to_string(rate) + " bytes/second burst " +
              std::to_string(burst) + " bytes " + faulted + "drop"};
    }
    case NetworkFault::kLatency:
      return {matched + "meta mark set meta mark or " + Hex(o.queue_mark)};
    default:
      return {};
  }
}

}  // namespace

bool QueuedFault(const NetworkFault& fault) {
  return fault.has_latency() || (fault.has_loss() && fault.loss().correlation_percent() > 0);
}

NetworkSelector::Direction EffectiveDirection(const NetworkFault& fault) {
  auto d = fault.match().direction();
  if (d != NetworkSelector::DIRECTION_UNSPECIFIED) return d;
  bool egress_default = fault.has_latency() || fault.has_bandwidth();
  return egress_default ? NetworkSelector::EGRESS : NetworkSelector::BOTH;
}

std::string PeerSetUpdateBatch(const std::string& table, const NetworkFault& fault,
                               const std::vector<std::string>& resolved) {
  const std::string t = "inet " + table;
  std::set<std::string> v4, v6;
  SplitAddresses(fault.match().cidrs(), resolved, &v4, &v6);
  return "flush set " + t + " peers4\n" + "flush set " + t + " peers6\n" +
         AddElements(t, "peers4", v4) + AddElements(t, "peers6", v6);
}

std::string NetworkApplyBatch(const std::string& table, const NetworkFault& fault,
                              const NetworkRuleOptions& o,
                              const std::vector<std::string>& resolved) {
  const std::string t = "inet " + table;
  const NetworkSelector& m = fault.match();
  const bool queued = QueuedFault(fault);
  std::string b = "add table " + t + "\ndelete table " + t + "\nadd table " + t + "\n";
  b += "add counter " + t + " matched\nadd counter " + t + " faulted\n";
  if (queued) b += "add counter " + t + " bypassed\n";
  const char* set_flags = "flags interval; auto-merge; }\n";
  b += "add set " + t + " peers4 { type ipv4_addr; " + set_flags;
  b += "add set " + t + " peers6 { type ipv6_addr; " + set_flags;
  b += "add set " + t + " excl4 { type ipv4_addr; " + set_flags;
  b += "add set " + t + " excl6 { type ipv6_addr; " + set_flags;
  {
    std::set<std::string> v4, v6;
    SplitAddresses(m.cidrs(), resolved, &v4, &v6);
    b += AddElements(t, "peers4", v4) + AddElements(t, "peers6", v6);
    std::set<std::string> e4, e6;
    SplitAddresses(m.exclude_cidrs(), {}, &e4, &e6);
    b += AddElements(t, "excl4", e4) + AddElements(t, "excl6", e6);
  }
  // Queued faults mark packets before the iptables-nft raw table (priority -300) queues them; the
  // other kinds filter at the ordinary filter priority.
  const std::string out_hook = queued ? "output priority -350" : "output priority 0";
  const std::string in_hook = queued ? "prerouting priority -350" : "input priority 0";
  const auto dir = EffectiveDirection(fault);
  struct Chain {
    const char* name;
    std::string hook;
    bool egress;
    bool active;
  };
  const Chain chains[] = {
      {"out", out_hook, true, dir != NetworkSelector::INGRESS},
      {"in", in_hook, false, dir != NetworkSelector::EGRESS},
  };
  for (const Chain& c : chains) {
    if (!c.active) continue;
    const std::string ch = t + " " + c.name;
    b += "add chain " + ch + " { type filter hook " + c.hook + "; policy accept; }\n";
    // Exemptions come first: the agent's control connection, loopback, excluded peers.
    if (queued && c.egress && o.bypass_mark != 0) {
      b += "add rule " + ch + " meta mark & " + Hex(o.bypass_mark) + " == " + Hex(o.bypass_mark) +
           " accept\n";
    }
    if (o.control_port != 0) {
      b += "add rule " + ch + " tcp " + (c.egress ? "sport " : "dport ") +
           std::to_string(o.control_port) + " accept\n";
    }
    if (!HasPeers(m)) b += "add rule " + ch + " " + (c.egress ? "oif" : "iif") + " lo accept\n";
    if (fault.has_reject()) {
      // The resets and ICMP errors our own reject rules send pass through these chains (an
      // egress reject's reset comes back in through loopback): rejecting them again would
      // swallow them and turn "refused" into a timeout.
      b += "add rule " + ch + " tcp flags & rst == rst accept\n";
      b += "add rule " + ch + " icmp type destination-unreachable accept\n";
      b += "add rule " + ch + " icmpv6 type destination-unreachable accept\n";
    }
    const char* addr = c.egress ? "daddr" : "saddr";
    b += "add rule " + ch + " ip " + addr + " @excl4 accept\n";
    b += "add rule " + ch + " ip6 " + addr + " @excl6 accept\n";
    for (const std::string& match : Matches(m, c.egress)) {
      for (const std::string& action : Actions(fault, m, o)) {
        b += "add rule " + ch + " " + match + action + "\n";
      }
    }
    if (queued) {
      const std::string q = t + " " + c.name + "q";
      b += "add chain " + q + " { type filter hook " + (c.egress ? "output" : "prerouting") +
           " priority -250; policy accept; }\n";
      b += "add rule " + q + " meta mark & " + Hex(o.queue_mark) + " == " + Hex(o.queue_mark) +
           " counter name \"bypassed\"\n";
    }
  }
  return b;
}

Evidence QueuedFaultEvidence(const std::vector<nfqueue::DelayLineStats>& lines,
                             const NftCounter& bypassed, bool latency) {
  nfqueue::DelayLineStats t;
  uint64_t compensation_ns = 0;
  bool realtime = !lines.empty();
  for (const auto& s : lines) {
    t.packets_received += s.packets_received;
    t.bytes_received += s.bytes_received;
    t.packets_delayed += s.packets_delayed;
    t.bytes_delayed += s.bytes_delayed;
    t.packets_dropped += s.packets_dropped;
    t.bytes_dropped += s.bytes_dropped;
    t.packets_passed_over_bound += s.packets_passed_over_bound;
    t.reinject_errors += s.reinject_errors;
    t.added_delay_sum_us += s.added_delay_sum_us;
    t.added_delay_max_us = std::max(t.added_delay_max_us, s.added_delay_max_us);
    t.held_packets += s.held_packets;
    t.kernel_dropped += s.kernel_dropped;
    t.kernel_user_dropped += s.kernel_user_dropped;
    t.receive_overruns += s.receive_overruns;
    compensation_ns = std::max(compensation_ns, s.timer_compensation_ns);
    realtime = realtime && s.realtime;
  }
  Evidence e;
  e["packets_matched"] = t.packets_received + bypassed.packets;
  e["bytes_matched"] = t.bytes_received + bypassed.bytes;
  e["packets_fail_open"] = bypassed.packets;
  e["bytes_fail_open"] = bypassed.bytes;
  e["packets_held"] = t.held_packets;
  e["packets_passed_over_bound"] = t.packets_passed_over_bound;
  e["reinject_errors"] = t.reinject_errors;
  e["kernel_queue_dropped"] = t.kernel_dropped;
  e["kernel_user_dropped"] = t.kernel_user_dropped;
  e["receive_overruns"] = t.receive_overruns;
  e["packets_dropped"] = t.packets_dropped;
  e["bytes_dropped"] = t.bytes_dropped;
  if (latency) {
    e["packets_delayed"] = t.packets_delayed;
    e["bytes_delayed"] = t.bytes_delayed;
    e["added_delay_mean_us"] = t.packets_delayed ? t.added_delay_sum_us / t.packets_delayed : 0;
    e["added_delay_max_us"] = t.added_delay_max_us;
    e["timer_compensation_us"] = compensation_ns / 1000;
    e["realtime"] = realtime ? 1 : 0;
  }
  // A run whose fidelity was compromised says so.
  e["fidelity_compromised"] = (bypassed.packets + t.packets_passed_over_bound + t.reinject_errors +
                               t.kernel_dropped + t.kernel_user_dropped + t.receive_overruns) > 0;
  return e;
}

std::vector<std::string> QueueRuleArgs(const std::string& op, bool egress,
                                       const std::string& comment, uint32_t mark,
                                       uint16_t queue_num) {
  const std::string m = Hex(mark);
  return {"-w",
          "-t",
          "raw",
          op,
          egress ? "OUTPUT" : "PREROUTING",
          "-m",
          "mark",
          "--mark",
          m + "/" + m,
          "-m",
          "comment",
          "--comment",
          comment,
          "-j",
          "NFQUEUE",
          "--queue-num",
          std::to_string(queue_num),
          "--queue-bypass"};
}

std::vector<std::vector<std::string>> QueueRuleDeletions(const std::string& listing,
                                                         const std::string& comment, bool exact) {
  std::vector<std::vector<std::string>> out;
  std::istringstream lines(listing);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> args;
    std::string w;
    while (words >> w) args.push_back(w);
    if (args.size() < 2 || args[0] != "-A") continue;
    bool ours = false;
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--comment") {
        std::string c = args[i + 1];
        if (c.size() >= 2 && c.front() == '"' && c.back() == '"') c = c.substr(1, c.size() - 2);
        ours = exact ? c == comment : c.rfind(comment, 0) == 0;
      }
    }
    if (!ours) continue;
    args[0] = "-D";
    args.insert(args.begin(), {"-w", "-t", "raw"});
    out.push_back(std::move(args));
  }
  return out;
}

}  // namespace faultline::agent::netfilter
