#pragma once
// DNS fault backend. Apply creates nft table `inet faultline_<fault-id>` whose nat/output chain
// returns packets of the interceptor's own flows (its socket mark, copied into conntrack label 127
// by a filter chain right after conntrack so a host's mangle rules cannot hide it) and redirects
// every other outbound udp/tcp port-53 packet (IPv4 and IPv6) to the interceptor on
// 127.0.0.1/[::1]:<port>. Nothing is written into the redirected packets (their mark stays). A
// scoped fault (cgroup v2 path and/or uid) redirects only its processes' queries (`socket cgroupv2
// level N "path"`, `meta skuid`), to a listener of its own, one chain priority earlier, so its
// rule applies to exactly those queries even while unscoped DNS faults are active. Queries whose
// name/type match an active fault get that fault's answer (see DnsInterceptor); others are
// forwarded to the resolver the client asked. Evidence per fault: queries_seen, queries_faulted,
// queries_faulted_<mode>, queries_passed (spared by probability), queries_faulted_via_cname.
// Revert deletes the table (atomic, touches nothing else) and removes the fault's rule and
// listener from the interceptor.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "agent/dns/dns_interceptor.h"
#include "agent/fault_backend.h"

namespace faultline::agent::host {
class FaultTables;
}

namespace faultline::agent::dns {

struct DnsBackendOptions {
  // Where pass-through queries go: "host" or "host:port". Empty: the first nameserver of
  // /etc/resolv.conf (inside `ip netns exec` that is /etc/netns/<ns>/resolv.conf).
  std::string upstream;
  // Interceptor port on 127.0.0.1 (UDP and TCP). 0 = pick a free one at start.
  uint16_t intercept_port = 0;
  // SO_MARK on the interceptor's upstream sockets; the redirect rule lets it pass.
  uint32_t socket_mark = 0x464c;  // "FL"
  // Per-query upstream timeout and the cap on queries waiting for the upstream.
  int upstream_timeout_ms = 2000;
  int max_outstanding = 1024;
  // Where the default upstream is read from when `upstream` is empty.
  std::string resolv_conf_path = "/etc/resolv.conf";
  // Creates and reverts the faults' nft tables (agent/host/fault_tables.h: dead-man switch,
  // ownership records); shared by every backend. Null: the backend makes its own (no records).
  std::shared_ptr<host::FaultTables> tables;
};

// The first `nameserver` address in resolv.conf text; NOT_FOUND when there is none.
Result<std::string> FirstNameserver(const std::string& resolv_conf_text);

class DnsBackend final : public FaultBackend {
 public:
  explicit DnsBackend(DnsBackendOptions options);
  ~DnsBackend() override;

  std::string Kind() const override { return "dns"; }
  Status DetectCapability() override;
  Status Validate(const v1::FaultSpec& spec) const override;
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override;
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override;

  // The shared interceptor's counters, all faults together (zero before the first Apply).
  // Thread-safe.
  DnsInterceptorStats InterceptorStats();

 private:
  // Starts the interceptor if it is not running yet. Guarded by mu_.
  Status EnsureInterceptorLocked();

  DnsBackendOptions options_;
  std::mutex mu_;                                // guards interceptor_ start-up
  std::shared_ptr<DnsInterceptor> interceptor_;  // started lazily on first Apply
};

}  // namespace faultline::agent::dns
