#include "common/faultspec/peer_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "common/dns_name.h"

namespace faultline::faultspec {
namespace {

// Quoted user text in messages: short and printable.
std::string Quote(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return "'" + out + (s.size() > 64 ? "...'" : "'");
}

bool IsCgroupComponent(const std::string& part) {
  return !part.empty() && part != "." && part != ".." &&
         std::all_of(part.begin(), part.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
                  c == '@' || c == ':' || c == '+';
         });
}

void CheckCidrs(const google::protobuf::RepeatedPtrField<std::string>& list,
                const std::string& path, FieldProblems* problems) {
  if (list.size() > kMaxCidrs) {
    problems->Add(path, "at most " + std::to_string(kMaxCidrs) + " entries, got " +
                            std::to_string(list.size()));
    return;
  }
  for (int i = 0; i < list.size(); ++i) {
    if (auto c = ParseCidr(list[i]); !c.ok()) problems->Add(Indexed(path, i), c.status().message());
  }
}

void CheckPorts(const google::protobuf::RepeatedField<uint32_t>& list, const std::string& path,
                FieldProblems* problems) {
  if (list.size() > kMaxPorts) {
    problems->Add(path, "at most " + std::to_string(kMaxPorts) + " ports, got " +
                            std::to_string(list.size()));
    return;
  }
  for (int i = 0; i < list.size(); ++i) {
    if (list[i] < 1 || list[i] > 65535) {
      problems->Add(Indexed(path, i),
                    "expected a port from 1 to 65535, got " + std::to_string(list[i]));
    }
  }
}

}  // namespace

Result<Cidr> ParseCidr(const std::string& text) {
  std::string addr = text;
  int prefix = -1;
  size_t slash = text.find('/');
  if (slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("invalid prefix length in " + Quote(text));
    }
    prefix = std::stoi(p);
  }
  unsigned char bytes[16] = {};
  Cidr c;
  if (inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
    c.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
    c.v6 = true;
  } else {
    return InvalidArgument(Quote(text) + " is not an IPv4/IPv6 address or CIDR");
  }
  int bits = c.v6 ? 128 : 32;
  if (prefix > bits) return InvalidArgument("prefix length too long in " + Quote(text));
  if (prefix < 0) prefix = bits;
  for (int i = 0; i < bits / 8; ++i) {
    int keep = std::clamp(prefix - i * 8, 0, 8);
    bytes[i] &= static_cast<unsigned char>(0xff00 >> keep);
  }
  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(c.v6 ? AF_INET6 : AF_INET, bytes, out, sizeof(out));
  c.text = out;
  if (prefix != bits) c.text += "/" + std::to_string(prefix);
  return c;
}

void ValidateSelectorLists(const v1::NetworkSelector& m, const std::string& path,
                           FieldProblems* problems) {
  using Sel = v1::NetworkSelector;
  if (!Sel::Direction_IsValid(m.direction())) {
    problems->Add(path + ".direction", "must be egress, ingress or both");
  }
  if (!Sel::Protocol_IsValid(m.protocol())) {
    problems->Add(path + ".protocol", "must be tcp, udp, icmp or any");
  }
  CheckCidrs(m.cidrs(), path + ".cidrs", problems);
  CheckCidrs(m.exclude_cidrs(), path + ".exclude_cidrs", problems);
  if (m.hosts_size() > kMaxHosts) {
    problems->Add(path + ".hosts", "at most " + std::to_string(kMaxHosts) + " host names, got " +
                                       std::to_string(m.hosts_size()));
  } else {
    for (int i = 0; i < m.hosts_size(); ++i) {
      if (Status s = ValidateDnsName(m.hosts(i), /*allow_wildcard=*/false); !s.ok()) {
        problems->Add(Indexed(path + ".hosts", i), s.message());
      }
    }
  }
  CheckPorts(m.remote_ports(), path + ".remote_ports", problems);
  CheckPorts(m.local_ports(), path + ".local_ports", problems);
  const uint32_t ri = m.resolve_interval_ms();
  if (ri != 0 && (ri < kMinResolveIntervalMs || ri > kMaxResolveIntervalMs)) {
    problems->Add(path + ".resolve_interval_ms", "must be from 100ms to 1h");
  }
}

std::string NormalizeCgroupPath(const std::string& cgroup) {
  std::string path = cgroup;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

Status ValidateCgroupPath(const std::string& cgroup) {
  const std::string path = NormalizeCgroupPath(cgroup);
  if (path.empty() || path.size() > kMaxCgroupPath) {
    return InvalidArgument("must be a path below the cgroup v2 root, 1 to 512 characters");
  }
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!IsCgroupComponent(part)) {
      return InvalidArgument(
          "expected a cgroup v2 path below /sys/fs/cgroup (e.g. \"system.slice/orders.service\"; "
          "components of letters, digits, . _ - @ : +, none empty, '.' or '..'), got " +
          Quote(cgroup));
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

}  // namespace faultline::faultspec
