#include "agent/dns/dns_backend.h"

#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/dns/dns_interceptor.h"
#include "agent/dns/dns_matcher.h"
#include "agent/dns/dns_responder.h"
#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nat_redirect.h"
#include "agent/host/nft_ruleset.h"
#include "common/faultspec/dns/dns_fault.h"
#include "common/faultspec/fault_kinds.h"
#include "common/faultspec/peer_rules.h"
#include "common/ids.h"

namespace faultline::agent::dns {
namespace {

constexpr const char* kCapCheckTable = "faultline_capcheck_dns";
// The conntrack label bit that marks the interceptor's own upstream flows (see ApplyBatch).
constexpr const char* kExemptLabel = "127";

std::string TableName(const std::string& fault_id) {
  return std::string(host::kTablePrefix) + fault_id;
}

constexpr const char* kCgroupRoot = "/sys/fs/cgroup/";

// The cgroup as nft must name it. nft stats /sys/fs/cgroup/<path> when the rule is added and
// matches on that inode at `level` (the depth below the cgroup v2 root). Where cgroup v2 is
// mounted elsewhere (hybrid hosts: /sys/fs/cgroup/unified) the path gets that prefix; where none
// is visible because `ip netns exec` gave the agent a private mount namespace with a fresh /sys
// (the sandbox), cgroup2 is mounted at /sys/fs/cgroup there — never in the host's namespace.
// FAILED_PRECONDITION when there is no cgroup v2 or the cgroup does not exist.
Result<std::string> CgroupPathForNft(const std::string& path) {
  auto is_cgroup2 = [](const char* dir) {
    struct statfs fs {};
    return statfs(dir, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
  };
  std::string prefix;
  if (is_cgroup2("/sys/fs/cgroup")) {
    prefix = "";
  } else if (is_cgroup2("/sys/fs/cgroup/unified")) {
    prefix = "unified/";
  } else {
    std::error_code ec;
    const bool own_mount_ns = std::filesystem::read_symlink("/proc/self/ns/mnt", ec) !=
                              std::filesystem::read_symlink("/proc/1/ns/mnt", ec);
    struct statfs fs {};
    const bool bare_sysfs = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == SYSFS_MAGIC;
    if (!own_mount_ns || !bare_sysfs ||
        mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
            0) {
      return FailedPrecondition("dns.cgroup: no cgroup v2 hierarchy at /sys/fs/cgroup");
    }
    spdlog::info("dns: mounted cgroup2 at /sys/fs/cgroup in the agent's own mount namespace");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(kCgroupRoot + prefix + path, ec)) {
    return FailedPrecondition("dns.cgroup: no cgroup v2 directory " + std::string(kCgroupRoot) +
                              prefix + path);
  }
  return prefix + path;
}

// The nft match for a fault's scope ("" = every process). Precondition: Validate passed and
// nft_cgroup_path is CgroupPathForNft's result (when a cgroup is given).
std::string ScopeMatch(const v1::DnsFault& dns, const std::string& nft_cgroup_path) {
  std::string m;
  if (!dns.cgroup().empty()) {
    std::string path = faultspec::NormalizeCgroupPath(dns.cgroup());
    int level = 1 + static_cast<int>(std::count(path.begin(), path.end(), '/'));
    m += "socket cgroupv2 level " + std::to_string(level) + " \"" + nft_cgroup_path + "\" ";
  }
  if (dns.has_uid()) m += "meta skuid " + std::to_string(dns.uid()) + " ";
  return m;
}

// The nft batch for one fault. It first removes any leftover table of the same name (add+delete
// is a no-op-safe delete), so re-applying after a crash never duplicates rules; the batch is one
// transaction, so either all of it takes effect or none. Both families are redirected: the
// interceptor listens on 127.0.0.1 and [::1]. A scoped fault redirects to its own listener port,
// one priority earlier than unscoped faults, so a query in scope reaches the listener that knows
// its scope even while an unscoped DNS fault is active too.
std::string ApplyBatch(const std::string& table, uint32_t mark, uint16_t port,
                       const std::string& scope_match) {
  const std::string t = "inet " + table;
  host::NatRedirect redirect;
  redirect.table = t;
  redirect.priority = scope_match.empty() ? -100 : -101;
  // The interceptor's own upstream queries carry its socket mark. A user's mangle rule (priority
  // -150) that sets marks on DNS for policy routing would overwrite it before the nat hook (-100)
  // looks, and the query would loop back to the interceptor; so the mark is copied into a
  // conntrack label right after conntrack (-200), where the nat chain checks it. (A mark
  // rewritten in raw, before conntrack, still defeats this.)
  redirect.exempt = {std::string("ct label ") + kExemptLabel, host::SocketMarkMatch(mark)};
  // Nothing is written into the packet (its mark stays the user's): the interceptor reads a UDP
  // query's original destination from conntrack, a TCP one with SO_ORIGINAL_DST. The inet table
  // covers IPv4 and IPv6.
  redirect.redirects = {{scope_match + "udp dport 53", port}, {scope_match + "tcp dport 53", port}};
  return "add table " + t + "\ndelete table " + t + "\nadd table " + t + "\n" + "add chain " + t +
         " tag { type filter hook output priority -199; }\n" + "add rule " + t + " tag " +
         host::SocketMarkMatch(mark) + " ct label set " + kExemptLabel + "\n" +
         host::NatRedirectBatch(redirect);
}

std::string ModeName(v1::DnsFault::Mode mode) {
  std::string n = v1::DnsFault::Mode_Name(mode);
  for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return n;
}

class DnsFaultHandle final : public FaultHandle {
 public:
  DnsFaultHandle(std::string fault_id, std::shared_ptr<host::FaultTables> tables,
                 host::TableOwnership table, std::shared_ptr<DnsInterceptor> interceptor,
                 std::shared_ptr<const DnsRuleCounters> counters, v1::DnsFault::Mode mode)
      : fault_id_(std::move(fault_id)),
        tables_(std::move(tables)),
        table_(std::move(table)),
        interceptor_(std::move(interceptor)),
        counters_(std::move(counters)),
        mode_(mode) {}

  ~DnsFaultHandle() override = default;

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    // Table first: once it is gone no query reaches the interceptor for this fault, so removing
    // the rule afterwards cannot let a redirected query slip through unfaulted mid-revert. If the
    // table cannot be deleted the rule stays, and a retry does both.
    Status s = tables_->Revert(table_);
    if (!s.ok()) return s;
    interceptor_->RemoveRule(fault_id_);
    interceptor_->RemoveScopedListener(fault_id_);
    reverted_ = true;
    return Status::Ok();
  }

  // Per fault: matching queries seen, faulted (also under the mode's name), passed (spared by
  // probability) and how many of the faulted matched through a CNAME target.
  Evidence GetEvidence() const override {
    const uint64_t faulted = counters_->faulted.load();
    return {{"queries_seen", counters_->seen.load()},
            {"queries_faulted", faulted},
            {"queries_faulted_" + ModeName(mode_), faulted},
            {"queries_passed", counters_->passed.load()},
            {"queries_faulted_via_cname", counters_->via_cname.load()}};
  }

 private:
  const std::string fault_id_;
  std::shared_ptr<host::FaultTables> tables_;
  const host::TableOwnership table_;
  std::shared_ptr<DnsInterceptor> interceptor_;
  std::shared_ptr<const DnsRuleCounters> counters_;
  const v1::DnsFault::Mode mode_;
  std::mutex mu_;
  bool reverted_ = false;
};

}  // namespace

Result<std::string> FirstNameserver(const std::string& resolv_conf_text) {
  std::istringstream lines(resolv_conf_text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string keyword, address;
    if (words >> keyword >> address && keyword == "nameserver") return address;
  }
  return NotFound("no nameserver line");
}

DnsBackend::DnsBackend(DnsBackendOptions options) : options_(std::move(options)) {
  if (!options_.tables) {
    options_.tables = std::make_shared<host::FaultTables>(
        std::make_shared<host::NftRuleset>(), std::make_shared<host::DeadmanSwitch>(), "");
  }
}

DnsBackend::~DnsBackend() {
  if (interceptor_) interceptor_->Stop();
}

Status DnsBackend::DetectCapability() {
  // A throwaway table with the exact kinds of chain and rules Apply uses. Its redirect rule can
  // never match (it needs a mark nobody sets and only lives for the length of two syscalls).
  const std::string t = std::string("inet ") + kCapCheckTable;
  auto& nft = *options_.tables->nft();
  Status s = nft.Run("add table " + t + "\n" + "add chain " + t +
                     " output { type nat hook output priority -100; }\n" + "add chain " + t +
                     " tag { type filter hook output priority -199; }\n" + "add rule " + t +
                     " tag meta mark 0xfffffffe ct label set " + kExemptLabel + "\n" + "add rule " +
                     t + " output ct label " + kExemptLabel + " return\n" + "add rule " + t +
                     " output meta mark 0xfffffffe udp dport 53 redirect to :53\n");
  Status cleanup = nft.DeleteTable("inet", kCapCheckTable);
  if (!s.ok()) {
    return FailedPrecondition("dns: nftables nat output redirect is not usable here (" +
                              s.message() + ")");
  }
  if (!cleanup.ok())
    return FailedPrecondition("dns: cannot delete nftables table: " + cleanup.message());
  return Status::Ok();
}

Status DnsBackend::Validate(const v1::FaultSpec& spec) const {
  if (!spec.has_dns()) return InvalidArgument("dns: the spec has no dns section");
  return faultspec::ValidateFaultSpec(spec);
}

Status DnsBackend::EnsureInterceptorLocked() {
  if (interceptor_) return Status::Ok();
  DnsInterceptorOptions o;
  o.port = options_.intercept_port;
  o.socket_mark = options_.socket_mark;
  o.upstream_timeout_ms = options_.upstream_timeout_ms;
  o.max_outstanding = options_.max_outstanding;
  o.upstream = options_.upstream;
  o.listen_ipv6_loopback = true;
  if (o.upstream.empty()) {
    std::ifstream in(options_.resolv_conf_path);
    if (!in) return FailedPrecondition("dns: cannot read " + options_.resolv_conf_path);
    std::stringstream text;
    text << in.rdbuf();
    auto ns = FirstNameserver(text.str());
    if (!ns.ok()) {
      return FailedPrecondition("dns: no upstream configured and no nameserver in " +
                                options_.resolv_conf_path);
    }
    o.upstream = *ns;
  }
  if (o.socket_mark == 0) return InvalidArgument("dns: socket_mark must be non-zero");
  auto interceptor = std::make_shared<DnsInterceptor>(o);
  Status s = interceptor->Start();
  if (!s.ok()) return Status(s.code(), "dns: interceptor: " + s.message());
  spdlog::info("dns interceptor listening on 127.0.0.1/[::1]:{} (udp+tcp), upstream {}",
               interceptor->port(), o.upstream);
  interceptor_ = std::move(interceptor);
  return Status::Ok();
}

Result<std::unique_ptr<FaultHandle>> DnsBackend::Apply(const std::string& fault_id,
                                                       const v1::FaultSpec& spec) {
  Status valid = Validate(spec);
  if (!valid.ok()) return valid;
  const std::string table = TableName(fault_id);
  if (!IsValidFaultId(fault_id) || !host::IsValidNftIdentifier(table)) {
    return InvalidArgument("dns: invalid fault id '" + fault_id + "'");
  }
  const v1::DnsFault& dns = spec.dns();
  auto matcher = DomainMatcher::Create({dns.domains().begin(), dns.domains().end()},
                                       dns.match() == v1::DnsFault::SUFFIX);
  if (!matcher.ok()) return InvalidArgument("dns." + matcher.status().message());
  std::string nft_cgroup_path;
  if (!dns.cgroup().empty()) {
    auto p = CgroupPathForNft(faultspec::NormalizeCgroupPath(dns.cgroup()));
    if (!p.ok()) return p.status();
    nft_cgroup_path = *p;
  }
  DnsRule rule{std::move(*matcher)};
  for (const auto& t : dns.record_types())
    rule.qtypes.push_back(*faultspec::DnsRecordTypeNumber(t));
  rule.answer = *MakeFaultAnswer(dns);
  rule.delay_ms = static_cast<int>(dns.delay_ms());
  rule.jitter_ms = static_cast<int>(dns.jitter_ms());
  rule.probability = dns.has_probability() ? dns.probability() : 1.0;
  const std::string scope_match = ScopeMatch(dns, nft_cgroup_path);
  if (!scope_match.empty()) rule.scope = fault_id;

  std::shared_ptr<DnsInterceptor> interceptor;
  {
    std::lock_guard lock(mu_);
    Status s = EnsureInterceptorLocked();
    if (!s.ok()) return s;
    interceptor = interceptor_;
  }
  uint16_t port = interceptor->port();
  if (!rule.scope.empty()) {
    auto scoped = interceptor->AddScopedListener(fault_id);
    if (!scoped.ok()) return Status(scoped.status().code(), "dns: " + scoped.status().message());
    port = *scoped;
  }
  // The rule goes in before the redirect exists, so the first redirected query is already faulted.
  auto counters = interceptor->AddRule(fault_id, std::move(rule));
  if (!counters.ok()) {
    interceptor->RemoveScopedListener(fault_id);
    return counters.status();
  }
  auto owned = options_.tables->Create("inet", table,
                                       ApplyBatch(table, options_.socket_mark, port, scope_match));
  if (!owned.ok()) {
    interceptor->RemoveRule(fault_id);
    interceptor->RemoveScopedListener(fault_id);
    return owned.status();
  }
  spdlog::info("dns fault {} applied: {} domain(s), mode {}, scope {}", fault_id,
               dns.domains_size(), ModeName(dns.mode()),
               scope_match.empty() ? "host" : scope_match);
  return std::unique_ptr<FaultHandle>(std::make_unique<DnsFaultHandle>(
      fault_id, options_.tables, *owned, interceptor, *counters, dns.mode()));
}

DnsInterceptorStats DnsBackend::InterceptorStats() {
  std::lock_guard lock(mu_);
  return interceptor_ ? interceptor_->GetStats() : DnsInterceptorStats{};
}

Status DnsBackend::RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) {
  const std::string table = TableName(fault_id);
  if (!host::IsValidNftIdentifier(table)) {
    return InvalidArgument("dns: invalid fault id '" + fault_id + "'");
  }
  Status s = options_.tables->RevertOrphan("inet", table);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  if (interceptor_) {
    interceptor_->RemoveRule(fault_id);
    interceptor_->RemoveScopedListener(fault_id);
  }
  return Status::Ok();
}

}  // namespace faultline::agent::dns
