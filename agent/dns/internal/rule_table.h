#pragma once
// Internal to the DNS interceptor: the rule table, and the decision it makes for a query or for
// a relayed answer. Thread-safe (one mutex; held only while rules are read or changed).

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "agent/dns/dns_interceptor.h"
#include "agent/dns/dns_responder.h"
#include "common/status.h"

namespace faultline::agent::dns::internal {

struct InterceptorCounters;

// What to do with one received message.
struct Decision {
  enum class Kind { kRespond, kDrop, kForward, kMalformed } kind = Kind::kMalformed;
  DnsWire response;                           // kRespond
  std::shared_ptr<DnsRuleCounters> counters;  // the matching rule that faults it, if any
  int delay_ms = 0;                           // kRespond late, or kForward's answer late
  uint16_t qtype = 0;
};

class DnsRuleTable {
 public:
  // `counters` (seen, malformed) outlives the table.
  explicit DnsRuleTable(InterceptorCounters& counters) : counters_(counters) {}

  // See DnsInterceptor::AddRule / RemoveRule / RuleCount.
  Result<std::shared_ptr<const DnsRuleCounters>> Add(const std::string& fault_id, DnsRule rule);
  bool Remove(const std::string& fault_id);
  size_t Count() const;

  // The decision for a query arriving on a listener of `scope` over `transport` (which bounds a
  // fault answer's size); counts it in seen (and in malformed when it does not parse).
  Decision Decide(std::span<const uint8_t> message, const std::string& scope,
                  DnsTransport transport);
  // A forwarded query's reply: if a CNAME target in it matches a rule, that rule's fault;
  // otherwise kForward (the reply itself).
  Decision DecideReply(std::span<const uint8_t> query, std::span<const uint8_t> reply,
                       uint16_t qtype, const std::string& scope, DnsTransport transport);

  // Counts a faulted answer once it was sent (whoever sees the counter move can read it).
  static void CountFaulted(const std::shared_ptr<DnsRuleCounters>& counters);

 private:
  struct Rule {
    std::string fault_id;
    DnsRule rule;
    std::shared_ptr<DnsRuleCounters> counters;
  };
  InterceptorCounters& counters_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;
};

}  // namespace faultline::agent::dns::internal
