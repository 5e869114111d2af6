#include "agent/dns/dns_backend.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "agent/dns/dns_interceptor.h"
#include "agent/dns/dns_matcher.h"
#include "agent/netfilter/nft_ruleset.h"
#include "common/ids.h"

namespace faultline::agent::dns {
namespace {

constexpr int kMaxDomains = 64;
constexpr const char* kCapCheckTable = "faultline_capcheck_dns";

std::string TableName(const std::string& fault_id) {
  return std::string(netfilter::kTablePrefix) + fault_id;
}

std::string MarkText(uint32_t mark) {
  std::ostringstream s;
  s << "0x" << std::hex << mark;
  return s.str();
}

// The nft batch for one fault. It first removes any leftover table of the same name (add+delete
// is a no-op-safe delete), so re-applying after a crash never duplicates rules; the batch is one
// transaction, so either all of it takes effect or none.
std::string ApplyBatch(const std::string& table, uint32_t mark, uint16_t port) {
  const std::string t = "inet " + table;
  const std::string p = std::to_string(port);
  return "add table " + t + "\n" +                                                 //
         "delete table " + t + "\n" +                                              //
         "add table " + t + "\n" +                                                 //
         "add chain " + t + " output { type nat hook output priority -100; }\n" +  //
         "add rule " + t + " output meta mark " + MarkText(mark) + " return\n" +   //
         "add rule " + t + " output udp dport 53 redirect to :" + p + "\n" +       //
         "add rule " + t + " output tcp dport 53 redirect to :" + p + "\n";
}

class DnsFaultHandle final : public FaultHandle {
 public:
  DnsFaultHandle(std::string fault_id, std::shared_ptr<netfilter::NftRuleset> nft,
                 std::shared_ptr<DnsInterceptor> interceptor, DnsInterceptor::Counter faulted)
      : fault_id_(std::move(fault_id)),
        nft_(std::move(nft)),
        interceptor_(std::move(interceptor)),
        faulted_(std::move(faulted)) {}

  ~DnsFaultHandle() override = default;

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    // Table first: once it is gone no query reaches the interceptor for this fault, so removing
    // the rule afterwards cannot let a redirected query slip through unfaulted mid-revert. If the
    // table cannot be deleted the rule stays, and a retry does both.
    Status s = nft_->DeleteTable("inet", TableName(fault_id_));
    if (!s.ok()) return s;
    interceptor_->RemoveRule(fault_id_);
    reverted_ = true;
    return Status::Ok();
  }

  Evidence GetEvidence() const override { return {{"queries_faulted", faulted_->load()}}; }

 private:
  const std::string fault_id_;
  std::shared_ptr<netfilter::NftRuleset> nft_;
  std::shared_ptr<DnsInterceptor> interceptor_;
  DnsInterceptor::Counter faulted_;
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

DnsBackend::DnsBackend(DnsBackendOptions options)
    : options_(std::move(options)), nft_(std::make_shared<netfilter::NftRuleset>()) {}

DnsBackend::~DnsBackend() {
  if (interceptor_) interceptor_->Stop();
}

Status DnsBackend::DetectCapability() {
  // A throwaway table with the exact kinds of chain and rules Apply uses. Its redirect rule can
  // never match (it needs a mark nobody sets and only lives for the length of two syscalls).
  const std::string t = std::string("inet ") + kCapCheckTable;
  Status s = nft_->Run("add table " + t + "\n" + "add chain " + t +
                       " output { type nat hook output priority -100; }\n" + "add rule " + t +
                       " output meta mark 0xfffffffe udp dport 53 redirect to :53\n");
  Status cleanup = nft_->DeleteTable("inet", kCapCheckTable);
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
  const auto& dns = spec.dns();
  if (dns.mode() == v1::DnsFault::MODE_UNSPECIFIED || !v1::DnsFault::Mode_IsValid(dns.mode())) {
    return InvalidArgument("dns.mode: must be one of drop, nxdomain, servfail, nodata, refused");
  }
  if (dns.domains_size() < 1 || dns.domains_size() > kMaxDomains) {
    return InvalidArgument("dns.domains: must list 1 to 64 domains, got " +
                           std::to_string(dns.domains_size()));
  }
  for (int i = 0; i < dns.domains_size(); ++i) {
    Status s = ValidateDomainPattern(dns.domains(i));
    if (!s.ok()) return InvalidArgument("dns.domains[" + std::to_string(i) + "]: " + s.message());
  }
  return Status::Ok();
}

Status DnsBackend::EnsureInterceptorLocked() {
  if (interceptor_) return Status::Ok();
  DnsInterceptorOptions o;
  o.port = options_.intercept_port;
  o.socket_mark = options_.socket_mark;
  o.upstream_timeout_ms = options_.upstream_timeout_ms;
  o.max_outstanding = options_.max_outstanding;
  o.upstream = options_.upstream;
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
  spdlog::info("dns interceptor listening on 127.0.0.1:{} (udp+tcp), upstream {}",
               interceptor->port(), o.upstream);
  interceptor_ = std::move(interceptor);
  return Status::Ok();
}

Result<std::unique_ptr<FaultHandle>> DnsBackend::Apply(const std::string& fault_id,
                                                       const v1::FaultSpec& spec) {
  Status valid = Validate(spec);
  if (!valid.ok()) return valid;
  const std::string table = TableName(fault_id);
  if (!IsValidFaultId(fault_id) || !netfilter::IsValidNftIdentifier(table)) {
    return InvalidArgument("dns: invalid fault id '" + fault_id + "'");
  }
  auto matcher = DomainMatcher::Create({spec.dns().domains().begin(), spec.dns().domains().end()});
  if (!matcher.ok()) return InvalidArgument("dns." + matcher.status().message());

  std::shared_ptr<DnsInterceptor> interceptor;
  {
    std::lock_guard lock(mu_);
    Status s = EnsureInterceptorLocked();
    if (!s.ok()) return s;
    interceptor = interceptor_;
  }
  // The rule goes in before the redirect exists, so the first redirected query is already faulted.
  auto counter = interceptor->AddRule(fault_id, std::move(*matcher), spec.dns().mode());
  if (!counter.ok()) return counter.status();
  Status s = nft_->Run(ApplyBatch(table, options_.socket_mark, interceptor->port()));
  if (!s.ok()) {
    interceptor->RemoveRule(fault_id);
    return s;
  }
  spdlog::info("dns fault {} applied: {} domain(s), mode {}", fault_id, spec.dns().domains_size(),
               v1::DnsFault::Mode_Name(spec.dns().mode()));
  return std::unique_ptr<FaultHandle>(
      std::make_unique<DnsFaultHandle>(fault_id, nft_, interceptor, *counter));
}

Status DnsBackend::RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) {
  const std::string table = TableName(fault_id);
  if (!netfilter::IsValidNftIdentifier(table)) {
    return InvalidArgument("dns: invalid fault id '" + fault_id + "'");
  }
  Status s = nft_->DeleteTable("inet", table);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  if (interceptor_) interceptor_->RemoveRule(fault_id);
  return Status::Ok();
}

}  // namespace faultline::agent::dns
