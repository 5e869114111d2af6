#include "agent/proxy/proxy_backend.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "agent/host/host_addresses.h"
#include "agent/host/host_watcher.h"
#include "agent/host/nft_ruleset.h"
#include "agent/netfilter/network_rules.h"
#include "agent/proxy/proxy_rules.h"
#include "common/faultspec/fault_kinds.h"
#include "common/ids.h"

namespace faultline::agent::proxy {
namespace {

constexpr const char* kCapCheckTable = "faultline_capcheck_proxy";

std::string TableName(const std::string& fault_id) {
  return std::string(host::kTablePrefix) + fault_id;
}

class ProxyFaultHandle final : public FaultHandle {
 public:
  ProxyFaultHandle(std::string fault_id, v1::DependencyFault fault,
                   std::shared_ptr<host::FaultTables> tables, host::TableOwnership table,
                   std::shared_ptr<TcpProxy> proxy, std::shared_ptr<ProxyCounters> counters,
                   std::unique_ptr<host::HostWatcher> hosts)
      : fault_id_(std::move(fault_id)),
        table_(TableName(fault_id_)),
        fault_(std::move(fault)),
        tables_(std::move(tables)),
        owned_(std::move(table)),
        proxy_(std::move(proxy)),
        counters_(std::move(counters)),
        hosts_(std::move(hosts)) {}

  ~ProxyFaultHandle() override { (void)Revert(); }

  // Re-resolves the fault's host names while it is active (no thread without hosts).
  void StartResolver() {
    hosts_->Start([this](const std::vector<std::string>& addresses) {
      return tables_->nft()->Run(RedirectPeerUpdateBatch(table_, fault_, addresses));
    });
  }

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    hosts_->Stop();
    redirected_final_ = ReadRedirected();
    // The redirect goes first, so no new connection reaches a listener that is closing.
    Status s = tables_->Revert(owned_);
    if (!s.ok()) return s;
    proxy_->RemoveFault(fault_id_);
    reverted_ = true;
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    Evidence e = counters_->ToEvidence();
    {
      std::lock_guard lock(mu_);
      e["connections_redirected"] = reverted_ ? redirected_final_ : ReadRedirected();
    }
    hosts_->AddEvidence(&e);
    return e;
  }

 private:
  uint64_t ReadRedirected() const {
    auto listing = tables_->nft()->RunWithOutput("list counters table inet " + table_);
    if (!listing.ok()) return 0;
    return host::ParseNftCounters(*listing)["redirected"].packets;
  }

  const std::string fault_id_;
  const std::string table_;
  const v1::DependencyFault fault_;
  std::shared_ptr<host::FaultTables> tables_;
  const host::TableOwnership owned_;
  std::shared_ptr<TcpProxy> proxy_;
  std::shared_ptr<ProxyCounters> counters_;

  mutable std::mutex mu_;
  bool reverted_ = false;          // guarded by mu_
  uint64_t redirected_final_ = 0;  // guarded by mu_

  const std::unique_ptr<host::HostWatcher> hosts_;
};

}  // namespace

ProxyBackend::ProxyBackend(ProxyBackendOptions options) : options_(std::move(options)) {
  if (!options_.tables) {
    options_.tables = std::make_shared<host::FaultTables>(
        std::make_shared<host::NftRuleset>(), std::make_shared<host::DeadmanSwitch>(), "");
  }
}

ProxyBackend::~ProxyBackend() {
  if (proxy_) proxy_->Stop();
}

Status ProxyBackend::DetectCapability() {
  // A throwaway table with the kinds of chain and rules Apply uses; its redirect needs a mark
  // nobody sets and lives for two syscalls.
  const std::string t = std::string("inet ") + kCapCheckTable;
  auto& nft = *options_.tables->nft();
  Status s = nft.Run("add table " + t + "\nadd chain " + t +
                     " output { type nat hook output priority -100; }\nadd rule " + t +
                     " output meta mark 0xfffffffe tcp dport { 1 } redirect to :1\n");
  Status cleanup = nft.DeleteTable("inet", kCapCheckTable);
  if (!s.ok()) {
    return FailedPrecondition("dependency: nftables nat output redirect is not usable here (" +
                              s.message() + ")");
  }
  if (!cleanup.ok()) {
    return FailedPrecondition("dependency: cannot delete nftables table: " + cleanup.message());
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  uint32_t mark = options_.socket_mark;
  bool marked = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0;
  std::string why = marked ? "" : std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!marked) {
    return FailedPrecondition(
        "dependency: cannot mark the proxy's sockets (SO_MARK needs "
        "CAP_NET_ADMIN): " +
        why);
  }
  return Status::Ok();
}

Status ProxyBackend::Validate(const v1::FaultSpec& spec) const {
  if (!spec.has_dependency())
    return InvalidArgument("dependency: the spec has no dependency section");
  return faultspec::ValidateFaultSpec(spec);
}

Status ProxyBackend::EnsureProxyLocked() {
  if (proxy_) return Status::Ok();
  if (options_.socket_mark == 0) return InvalidArgument("dependency: socket_mark must be non-zero");
  ProxyOptions o;
  o.socket_mark = options_.socket_mark;
  o.max_connections = options_.max_connections;
  o.max_held_bytes = options_.max_held_bytes;
  o.connect_timeout_ms = options_.connect_timeout_ms;
  o.idle_timeout_ms = options_.idle_timeout_ms;
  o.splice = options_.splice;
  o.sched_slice_us = options_.sched_slice_us;
  auto proxy = TcpProxy::Start(o);
  if (!proxy.ok()) return proxy.status();
  proxy_ = std::shared_ptr<TcpProxy>(std::move(*proxy));
  return Status::Ok();
}

Result<std::unique_ptr<FaultHandle>> ProxyBackend::Apply(const std::string& fault_id,
                                                         const v1::FaultSpec& spec) {
  Status valid = Validate(spec);
  if (!valid.ok()) return valid;
  const std::string table = TableName(fault_id);
  if (!IsValidFaultId(fault_id) || !host::IsValidNftIdentifier(table)) {
    return InvalidArgument("dependency: invalid fault id '" + fault_id + "'");
  }
  const v1::DependencyFault& fault = spec.dependency();
  if (fault.match().hosts_size() > 0) {
    // Fails at once, naming the host, when the resolver does not answer in time.
    auto first = host::ResolveHostAddressesWithin(
        {fault.match().hosts().begin(), fault.match().hosts().end()}, host::kResolveTimeout);
    if (!first.ok()) {
      return Status(first.status().code(), "dependency.match.hosts: " + first.status().message());
    }
  }
  std::shared_ptr<TcpProxy> proxy;
  {
    std::lock_guard lock(mu_);
    Status s = EnsureProxyLocked();
    if (!s.ok()) return s;
    proxy = proxy_;
  }
  auto counters = std::make_shared<ProxyCounters>();
  auto listening = proxy->AddFault(fault_id, ProxyRoute{fault, std::nullopt}, counters);
  if (!listening.ok()) return listening.status();
  if (!listening->ipv6) {
    // Without a [::1] listener IPv6 connections cannot be redirected: a fault on IPv6 peers
    // would silently do nothing.
    for (const std::string& c : fault.match().cidrs()) {
      auto cidr = host::ParseCidr(c);
      if (cidr.ok() && cidr->v6) {
        proxy->RemoveFault(fault_id);
        return FailedPrecondition("dependency.match.cidrs: " + c +
                                  " is IPv6, but the proxy cannot listen on [::1] here (no IPv6 "
                                  "loopback in this network namespace)");
      }
    }
    spdlog::warn("dependency fault {}: no IPv6 loopback: only IPv4 connections are redirected",
                 fault_id);
  }
  auto hosts = std::make_unique<host::HostWatcher>(
      std::vector<std::string>(fault.match().hosts().begin(), fault.match().hosts().end()),
      std::chrono::milliseconds(fault.match().resolve_interval_ms()),
      "dependency fault " + fault_id, &host::ResolveHostAddresses);
  const std::vector<std::string> resolved = hosts->ResolveInitial();
  RedirectOptions ro;
  ro.socket_mark = options_.socket_mark;
  ro.port = listening->port;
  ro.ipv6 = listening->ipv6;
  auto owned =
      options_.tables->Create("inet", table, RedirectApplyBatch(table, fault, ro, resolved));
  if (!owned.ok()) {
    proxy->RemoveFault(fault_id);
    return owned.status();
  }
  auto handle = std::make_unique<ProxyFaultHandle>(fault_id, fault, options_.tables, *owned, proxy,
                                                   counters, std::move(hosts));
  handle->StartResolver();
  spdlog::info("dependency fault {} applied: proxy on 127.0.0.1{}:{}, {} toxic(s), http {}",
               fault_id, listening->ipv6 ? "/[::1]" : "", listening->port, fault.toxics_size(),
               fault.has_http() ? "on" : "off");
  return std::unique_ptr<FaultHandle>(std::move(handle));
}

Status ProxyBackend::RevertOrphan(const std::string& fault_id, const v1::FaultSpec&) {
  const std::string table = TableName(fault_id);
  if (!host::IsValidNftIdentifier(table)) {
    return InvalidArgument("dependency: invalid fault id '" + fault_id + "'");
  }
  Status s = options_.tables->RevertOrphan("inet", table);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  if (proxy_) proxy_->RemoveFault(fault_id);
  return Status::Ok();
}

}  // namespace faultline::agent::proxy
