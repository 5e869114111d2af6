#pragma once
// DnsInterceptor: a small DNS proxy on 127.0.0.1:<port> and [::1]:<port> (UDP and TCP) that the
// DNS fault's nft redirect sends every outbound port-53 query to. A query whose name (and record
// type) matches an active rule gets that rule's fault answer (none for DROP, spoofed records for
// SPOOF, the upstream's answer late for DELAY), for a `probability` share of matching queries;
// every other query is forwarded byte-for-byte to the resolver the client asked — its destination
// before the redirect: SO_ORIGINAL_DST for TCP, the flow's conntrack entry for UDP (IPv4 and IPv6,
// see ConntrackLookup; nothing is written into the packet, so the client's packet mark is left
// alone); the configured upstream for clients that asked the interceptor directly — from a socket
// carrying SO_MARK (which the redirect rule exempts), and the reply is relayed byte-for-byte. A
// relayed
// answer whose CNAME chain reaches a name a rule matches (for the query's type) gets that rule's
// fault instead.
//
// Scoped rules: a rule may be bound to an extra listener (AddScopedListener) that only the
// scoped fault's nft rules redirect to; such a rule applies to queries arriving there only.
//
// Threads: one event-loop thread (host::EventLoop: epoll over non-blocking sockets, an eventfd
// for wake-ups and Stop, one timerfd for every deadline) serves everything: UDP queries, the
// outstanding upstream UDP queries (sent unchanged from a small pool of marked sockets per
// resolver, matched by id), and every TCP connection as a small state machine (frame read,
// upstream exchange over a marked non-blocking socket, write). Delayed answers, UDP and TCP, wait
// for a deadline in the loop (nothing sleeps), so they hold up no other query. No thread per
// connection: at most max_tcp_connections TCP clients (more are closed), each with an idle
// deadline between queries and an I/O deadline within one. When accept() fails for lack of fds,
// TCP listeners are unwatched until a TCP connection ends or a short backoff passes.
// Answers never exceed 65535 bytes (see BuildFaultResponse), so every TCP frame is exact.
// Internals: agent/dns/internal/ (rule table, UDP relay, TCP server).

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent/dns/dns_matcher.h"
#include "agent/dns/dns_responder.h"
#include "agent/host/conntrack_lookup.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::dns {

// A numeric socket address (the host layer's type).
using host::SocketAddress;

// Parses "1.2.3.4", "1.2.3.4:5353", "::1", "[::1]:5353" (numeric only; no DNS lookups, we are
// the DNS). default_port applies when none is given. INVALID_ARGUMENT otherwise.
Result<SocketAddress> ParseSocketAddress(std::string_view text, uint16_t default_port);

struct DnsInterceptorOptions {
  std::string listen_address = "127.0.0.1";  // numeric IPv4/IPv6 address
  // Also listen on [::1] with the same port (the nft redirect of IPv6 queries goes there).
  // Skipped with a log line when the host has no IPv6 loopback.
  bool listen_ipv6_loopback = false;
  uint16_t port = 0;  // 0 = pick a free port (same for UDP and TCP)
  // Forward to the client's original destination when it was redirected (see above).
  bool forward_to_original_destination = true;
  std::string upstream;             // see ParseSocketAddress; port 53 by default
  uint32_t socket_mark = 0;         // SO_MARK on upstream sockets; 0 = none
  int upstream_timeout_ms = 2000;   // per forwarded query
  int max_outstanding = 1024;       // UDP queries waiting for the upstream
  int max_tcp_connections = 32;     // concurrent TCP clients; more are closed
  int tcp_idle_timeout_ms = 10000;  // a TCP client silent this long is closed
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
  // accept() failed for lack of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM); the TCP listener then pauses
  // until a TCP connection ends or a short backoff passes, instead of spinning.
  uint64_t tcp_accept_failures = 0;
  uint64_t outstanding = 0;           // forwarded queries waiting right now (UDP + TCP)
  uint64_t delayed_pending = 0;       // UDP answers waiting in the timer queue right now
  uint64_t original_destination = 0;  // forwarded to a resolver other than the configured one
};

// One rule: which queries it matches and what they get.
struct DnsRule {
  DomainMatcher matcher;
  std::vector<uint16_t> qtypes{};  // empty = every record type
  FaultAnswer answer{};            // answer.mode is the rule's mode
  int delay_ms = 0;                // DELAY: upstream answer late; others: fault answer late
  int jitter_ms = 0;               // uniform +-
  double probability = 1.0;        // (0, 1]
  std::string scope{};             // "" = every listener; else the AddScopedListener scope
};

// Per-rule counters. A matching query counts once in seen and then in faulted or passed (spared
// by probability) — except a DELAY query whose upstream never answered (interceptor timeouts).
struct DnsRuleCounters {
  std::atomic<uint64_t> seen{0};
  std::atomic<uint64_t> faulted{0};
  std::atomic<uint64_t> passed{0};
  std::atomic<uint64_t> via_cname{0};  // of faulted: matched through a CNAME target
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
  uint16_t port() const;

  // Adds a rule; rules are tried in the order added and the first match wins. Thread-safe, may
  // be called before or after Start. ALREADY_EXISTS when fault_id already has a rule;
  // INVALID_ARGUMENT for an unspecified mode, probability outside (0, 1], negative delays or
  // DELAY without a delay. Returns the rule's counters.
  Result<std::shared_ptr<const DnsRuleCounters>> AddRule(const std::string& fault_id, DnsRule rule);
  // Shorthand: a rule with only names and a mode; returns its faulted counter.
  Result<Counter> AddRule(const std::string& fault_id, DomainMatcher matcher,
                          v1::DnsFault::Mode mode);

  // Opens an extra listener (same addresses, a new port) whose queries carry `scope`. Requires a
  // started interceptor (FAILED_PRECONDITION otherwise); ALREADY_EXISTS for a scope already open;
  // UNAVAILABLE when binding fails. Returns its port.
  Result<uint16_t> AddScopedListener(const std::string& scope);
  // Closes a scope's listener. Idempotent. Thread-safe.
  void RemoveScopedListener(const std::string& scope);
  // Removes fault_id's rule. Idempotent: false when there was none. Thread-safe.
  bool RemoveRule(const std::string& fault_id);
  size_t RuleCount() const;

  DnsInterceptorStats GetStats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::agent::dns
