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
// Threads: one event loop (poll) serves UDP, accepts TCP, tracks outstanding upstream UDP
// queries (sent unchanged from a small pool of marked sockets per resolver, matched by id) and
// sends delayed UDP answers from a timer queue (it never sleeps); each TCP connection is served on
// its own thread, at most max_tcp_connections at once.

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/dns/conntrack_lookup.h"
#include "agent/dns/dns_matcher.h"
#include "agent/dns/dns_responder.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::dns {

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
  std::vector<uint16_t> qtypes;  // empty = every record type
  FaultAnswer answer;            // answer.mode is the rule's mode
  int delay_ms = 0;              // DELAY: upstream answer late; others: fault answer late
  int jitter_ms = 0;             // uniform +-
  double probability = 1.0;      // (0, 1]
  std::string scope;             // "" = every listener; else the AddScopedListener scope
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
  uint16_t port() const { return port_.load(); }

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
  struct Rule {
    std::string fault_id;
    DnsRule rule;
    std::shared_ptr<DnsRuleCounters> counters;
  };
  // What to do with one received message.
  struct Decision {
    enum class Kind { kRespond, kDrop, kForward, kMalformed } kind = Kind::kMalformed;
    DnsWire response;                           // kRespond
    std::shared_ptr<DnsRuleCounters> counters;  // the matching rule that faults it, if any
    int delay_ms = 0;                           // kRespond late, or kForward's answer late
    uint16_t qtype = 0;
  };
  struct Listener;
  struct PendingUdp;
  struct DelayedUdp;
  struct DelayedLater {
    bool operator()(const std::unique_ptr<DelayedUdp>& a,
                    const std::unique_ptr<DelayedUdp>& b) const;
  };

  Decision Decide(std::span<const uint8_t> message, const std::string& scope);
  // A forwarded query's reply: if a CNAME target in it matches a rule, that rule's fault.
  Decision DecideReply(std::span<const uint8_t> query, std::span<const uint8_t> reply,
                       uint16_t qtype, const std::string& scope);
  static void CountFaulted(const std::shared_ptr<DnsRuleCounters>& counters);
  void EventLoop();
  // local: the address the listener socket is bound to (the redirect's target).
  void HandleUdpReadable(const std::shared_ptr<Listener>& listener, int udp_fd,
                         const SocketAddress& local);
  // Where a redirected UDP query from `client`, received on `local`, was going: its original
  // destination per conntrack, cached for kOrigDstCacheTtl (see the .cpp); the configured
  // upstream when it was not redirected or conntrack is unavailable. Fills dests[i] for each i
  // in `which`.
  void ResolveUdpDestinations(const SocketAddress* clients, const SocketAddress& local,
                              uint16_t port, std::span<const int> which, SocketAddress* dests);
  void ForwardUdp(std::span<const uint8_t> message, const SocketAddress& client,
                  const SocketAddress& dest, const std::shared_ptr<Listener>& listener, int udp_fd,
                  Decision decision);
  void SendUdpAnswer(int udp_fd, const SocketAddress& client, DnsWire answer, int delay_ms,
                     std::shared_ptr<DnsRuleCounters> counters, std::shared_ptr<Listener> listener);
  void AcceptTcp(int tcp_fd, const std::string& scope);
  void ServeTcp(int fd, const std::string& scope);
  Result<DnsWire> ForwardTcp(std::span<const uint8_t> message, const SocketAddress& upstream);
  Result<int> OpenUpstreamSocket(int type, const SocketAddress& upstream);
  Result<std::shared_ptr<Listener>> OpenListener(const std::string& scope, uint16_t port);
  void Wake();
  static int JitteredDelay(int delay_ms, int jitter_ms);

  const DnsInterceptorOptions options_;
  SocketAddress upstream_;
  std::atomic<uint16_t> port_{0};
  int stop_fd_ = -1;  // eventfd, written once by Stop; every poll watches it
  int wake_fd_ = -1;  // eventfd: listeners changed, rebuild the poll set
  bool started_ = false;
  std::thread loop_;
  struct UpstreamSocket;
  void HandleUpstreamReply(PendingUdp& p, std::span<const uint8_t> reply);
  // Event-loop thread only: forwarded UDP queries by (socket, id), their deadlines in order, and
  // the pooled upstream sockets (bounded; closed at Stop).
  std::unordered_map<uint64_t, std::unique_ptr<PendingUdp>> pending_;
  std::vector<std::unique_ptr<PendingUdp>> spare_pending_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> expiry_;
  std::vector<UpstreamSocket> upstream_sockets_;
  // UDP original destinations (event loop only): null when conntrack cannot be queried here.
  std::unique_ptr<ConntrackLookup> conntrack_;
  struct FlowKey {
    uint8_t family = 0;
    uint16_t local_port = 0;
    uint16_t client_port = 0;
    uint8_t address[16] = {};
    bool operator==(const FlowKey&) const = default;
  };
  struct FlowKeyHash {
    size_t operator()(const FlowKey& k) const;
  };
  struct OrigDst {
    SocketAddress dest;
    std::chrono::steady_clock::time_point expires;
  };
  std::unordered_map<FlowKey, OrigDst, FlowKeyHash> orig_dst_cache_;
  // Batched UDP I/O (event loop only): receive slots for recvmmsg, datagrams for sendmmsg.
  struct OutDatagram {
    int fd = -1;
    SocketAddress to;   // length 0: a connected socket
    size_t offset = 0;  // the bytes, in out_bytes_
    size_t length = 0;
  };
  uint8_t* Slot(int i);
  void Queue(int fd, const SocketAddress* to, std::span<const uint8_t> bytes);
  void FlushOutbox();
  std::vector<uint8_t> arena_;
  std::vector<OutDatagram> outbox_;
  std::vector<uint8_t> out_bytes_;
  std::vector<std::unique_ptr<DelayedUdp>> delayed_;  // heap (DelayedLater), event loop only
  // TCP listeners are not polled until then (accept failed for lack of fds); event loop only.
  std::chrono::steady_clock::time_point accept_paused_until_{};

  mutable std::mutex listeners_mu_;
  std::vector<std::shared_ptr<Listener>> listeners_;  // [0] = the main listener

  mutable std::mutex rules_mu_;
  std::vector<Rule> rules_;

  std::mutex tcp_mu_;
  std::condition_variable tcp_cv_;
  int tcp_active_ = 0;

  std::atomic<uint64_t> seen_{0}, faulted_{0}, passed_{0}, malformed_{0}, overload_{0},
      timeouts_{0}, upstream_errors_{0}, tcp_rejected_{0}, tcp_accept_failures_{0},
      delayed_pending_{0}, orig_dst_{0};
  std::atomic<int64_t> outstanding_{0};
};

}  // namespace faultline::agent::dns
