#pragma once
// DnsInterceptor: a small DNS proxy on 127.0.0.1:<port> (UDP and TCP) that the DNS fault's nft
// redirect sends every outbound port-53 query to. A query whose name matches an active rule gets
// that rule's fault answer (or none, for DROP); every other query is forwarded byte-for-byte to
// the upstream resolver from a socket carrying SO_MARK (which the redirect rule exempts), and the
// upstream's reply is relayed byte-for-byte to the client.
//
// Threads: one event loop (poll) serves UDP, accepts TCP and tracks outstanding upstream UDP
// queries; each TCP connection is served on its own thread, at most max_tcp_connections at once.

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "agent/dns/dns_matcher.h"
#include "agent/dns/dns_responder.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::dns {

// A numeric socket address.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Parses "1.2.3.4", "1.2.3.4:5353", "::1", "[::1]:5353" (numeric only; no DNS lookups, we are
// the DNS). default_port applies when none is given. INVALID_ARGUMENT otherwise.
Result<SocketAddress> ParseSocketAddress(std::string_view text, uint16_t default_port);

struct DnsInterceptorOptions {
  std::string listen_address = "127.0.0.1";  // numeric IPv4/IPv6 address
  uint16_t port = 0;                         // 0 = pick a free port (same for UDP and TCP)
  std::string upstream;                      // see ParseSocketAddress; port 53 by default
  uint32_t socket_mark = 0;                  // SO_MARK on upstream sockets; 0 = none
  int upstream_timeout_ms = 2000;            // per forwarded query
  int max_outstanding = 1024;                // UDP queries waiting for the upstream
  int max_tcp_connections = 32;              // concurrent TCP clients; more are closed
  int tcp_idle_timeout_ms = 10000;           // a TCP client silent this long is closed
};

// Interceptor-wide counters. A message counts once in queries_seen and then in exactly one of
// queries_faulted, queries_passed (forwarded upstream), malformed, or overload_dropped.
struct DnsInterceptorStats {
  uint64_t queries_seen = 0;
  uint64_t queries_faulted = 0;
  uint64_t queries_passed = 0;
  uint64_t malformed = 0;
  uint64_t overload_dropped = 0;   // max_outstanding reached
  uint64_t upstream_timeouts = 0;  // forwarded, no reply within upstream_timeout_ms
  uint64_t upstream_errors = 0;    // forwarded, the upstream refused / socket error
  uint64_t tcp_rejected = 0;       // connections closed because of max_tcp_connections
  uint64_t outstanding = 0;        // forwarded queries waiting right now (UDP + TCP)
};

class DnsInterceptor {
 public:
  // Counts the queries one rule answered; shared so it stays readable after the rule is gone.
  using Counter = std::shared_ptr<std::atomic<uint64_t>>;

  explicit DnsInterceptor(DnsInterceptorOptions options);
  // Stops (see Stop).
  ~DnsInterceptor();
  DnsInterceptor(const DnsInterceptor&) = delete;
  DnsInterceptor& operator=(const DnsInterceptor&) = delete;

  // Binds UDP and TCP on listen_address:port and starts serving. Errors: INVALID_ARGUMENT for a
  // bad listen/upstream address, PERMISSION_DENIED when SO_MARK cannot be set, UNAVAILABLE when
  // binding fails, FAILED_PRECONDITION when already started. Not restartable after Stop.
  Status Start();
  // Stops serving, closes every socket and joins every thread. Idempotent; rules are kept.
  void Stop();
  // The bound port (valid after a successful Start).
  uint16_t port() const { return port_.load(); }

  // Adds a rule; rules are tried in the order added and the first match wins. Thread-safe, may
  // be called before or after Start. ALREADY_EXISTS when fault_id already has a rule;
  // INVALID_ARGUMENT for an unspecified mode. Returns the rule's queries_faulted counter.
  Result<Counter> AddRule(const std::string& fault_id, DomainMatcher matcher,
                          v1::DnsFault::Mode mode);
  // Removes fault_id's rule. Idempotent: false when there was none. Thread-safe.
  bool RemoveRule(const std::string& fault_id);
  size_t RuleCount() const;

  DnsInterceptorStats GetStats() const;

 private:
  struct Rule {
    std::string fault_id;
    DomainMatcher matcher;
    v1::DnsFault::Mode mode;
    Counter faulted;
  };
  // What to do with one received message.
  struct Decision {
    enum class Kind { kRespond, kDrop, kForward, kMalformed } kind = Kind::kMalformed;
    DnsWire response;  // kRespond
    Counter faulted;   // kRespond, kDrop
  };
  struct PendingUdp;

  Decision Decide(std::span<const uint8_t> message);
  void CountFaulted(const Counter& counter);
  void EventLoop();
  void HandleUdpReadable();
  void ForwardUdp(std::span<const uint8_t> message, const SocketAddress& client);
  void AcceptTcp();
  void ServeTcp(int fd);
  Result<DnsWire> ForwardTcp(std::span<const uint8_t> message);
  Result<int> OpenUpstreamSocket(int type);

  const DnsInterceptorOptions options_;
  SocketAddress upstream_;
  std::atomic<uint16_t> port_{0};
  int udp_fd_ = -1;
  int tcp_fd_ = -1;
  int stop_fd_ = -1;  // eventfd, written once by Stop; every poll watches it
  bool started_ = false;
  std::thread loop_;
  std::vector<std::unique_ptr<PendingUdp>> pending_;  // event-loop thread only

  mutable std::mutex rules_mu_;
  std::vector<Rule> rules_;

  std::mutex tcp_mu_;
  std::condition_variable tcp_cv_;
  int tcp_active_ = 0;

  std::atomic<uint64_t> seen_{0}, faulted_{0}, passed_{0}, malformed_{0}, overload_{0},
      timeouts_{0}, upstream_errors_{0}, tcp_rejected_{0};
  std::atomic<int64_t> outstanding_{0};
};

}  // namespace faultline::agent::dns
