#pragma once
// Dependency fault backend (kind "dependency"): the transparent TCP fault proxy.
//
// Apply gives the fault a listener in the shared TcpProxy and creates nft table
// `inet faultline_<fault-id>` whose nat/output chain returns the proxy's own (marked) upstream
// connections and redirects every other new outbound TCP connection to the dependency (ports,
// peers = cidrs + hosts re-resolved every resolve_interval_ms, minus exclusions) to that
// listener. Connections already open when the fault is applied are not affected. Revert deletes
// the table first (new connections go direct again), then closes the fault's listener and the
// connections it carries. Evidence: see ProxyCounters::ToEvidence (connections_affected,
// requests_aborted, bytes_delayed, ...), plus connections_redirected (the nft counter) and, with
// hosts, peer_addresses / resolutions. IPv6 connections are redirected to the listener's [::1]
// twin (IP6T_SO_ORIGINAL_DST gives their destination); where the namespace has no IPv6 loopback
// only IPv4 is redirected, and a fault naming IPv6 cidrs fails with FAILED_PRECONDITION.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "agent/fault_backend.h"
#include "agent/proxy/tcp_proxy.h"

namespace faultline::agent::host {
class FaultTables;
}

namespace faultline::agent::proxy {

struct ProxyBackendOptions {
  // SO_MARK on the proxy's upstream sockets; the redirect rule lets them pass. Differs from the
  // DNS interceptor's mark.
  uint32_t socket_mark = 0x464d;  // "FM"
  int max_connections = 4096;
  uint64_t max_held_bytes = 64ull << 20;
  int connect_timeout_ms = 5000;
  // A proxied connection with no byte moving either way for this long is closed; 0 = never
  // (ProxyOptions::idle_timeout_ms, the same default).
  int idle_timeout_ms = 3600 * 1000;
  bool splice = true;      // see ProxyOptions::splice
  int sched_slice_us = 0;  // see ProxyOptions::sched_slice_us
  // Creates and reverts the faults' nft tables (agent/host/fault_tables.h: dead-man switch,
  // ownership records); shared by every backend. Null: the backend makes its own (no records).
  std::shared_ptr<host::FaultTables> tables;
};

class ProxyBackend final : public FaultBackend {
 public:
  explicit ProxyBackend(ProxyBackendOptions options);
  ~ProxyBackend() override;

  std::string Kind() const override { return "dependency"; }
  // OK when nft nat output redirect works and SO_MARK can be set (CAP_NET_ADMIN).
  Status DetectCapability() override;
  Status Validate(const v1::FaultSpec& spec) const override;
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override;
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override;

 private:
  Status EnsureProxyLocked();

  ProxyBackendOptions options_;
  std::mutex mu_;                    // guards proxy_ start-up
  std::shared_ptr<TcpProxy> proxy_;  // started lazily on the first Apply
};

}  // namespace faultline::agent::proxy
