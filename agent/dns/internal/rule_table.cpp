#include "agent/dns/internal/rule_table.h"

#include <algorithm>
#include <random>

#include "agent/dns/internal/interceptor_core.h"

namespace faultline::agent::dns::internal {
namespace {

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

int JitteredDelay(int delay_ms, int jitter_ms) {
  if (jitter_ms <= 0) return delay_ms;
  std::uniform_int_distribution<int> d(-jitter_ms, jitter_ms);
  return std::max(0, delay_ms + d(Rng()));
}

bool TypeMatches(const std::vector<uint16_t>& qtypes, uint16_t qtype) {
  return qtypes.empty() || std::find(qtypes.begin(), qtypes.end(), qtype) != qtypes.end();
}

bool Spared(double probability) {
  if (probability >= 1.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(Rng()) >= probability;
}

}  // namespace

Result<std::shared_ptr<const DnsRuleCounters>> DnsRuleTable::Add(const std::string& fault_id,
                                                                 DnsRule rule) {
  const auto mode = rule.answer.mode;
  if (mode == v1::DnsFault::MODE_UNSPECIFIED || !v1::DnsFault::Mode_IsValid(mode)) {
    return InvalidArgument("DNS rule " + fault_id + ": mode is unspecified or unknown");
  }
  if (!(rule.probability > 0.0 && rule.probability <= 1.0)) {
    return InvalidArgument("DNS rule " + fault_id + ": probability must be in (0, 1]");
  }
  if (rule.delay_ms < 0 || rule.jitter_ms < 0) {
    return InvalidArgument("DNS rule " + fault_id + ": delays must not be negative");
  }
  if (mode == v1::DnsFault::DELAY && rule.delay_ms == 0 && rule.jitter_ms == 0) {
    return InvalidArgument("DNS rule " + fault_id + ": delay needs a delay");
  }
  std::lock_guard lock(mu_);
  for (const auto& r : rules_) {
    if (r.fault_id == fault_id) return AlreadyExists("DNS rule " + fault_id + " already exists");
  }
  auto counters = std::make_shared<DnsRuleCounters>();
  rules_.push_back(Rule{fault_id, std::move(rule), counters});
  return std::shared_ptr<const DnsRuleCounters>(counters);
}

bool DnsRuleTable::Remove(const std::string& fault_id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(rules_.begin(), rules_.end(),
                         [&](const Rule& r) { return r.fault_id == fault_id; });
  if (it == rules_.end()) return false;
  rules_.erase(it);
  return true;
}

size_t DnsRuleTable::Count() const {
  std::lock_guard lock(mu_);
  return rules_.size();
}

Decision DnsRuleTable::Decide(std::span<const uint8_t> message, const std::string& scope,
                              DnsTransport transport) {
  ++counters_.seen;
  Decision d;
  // Almost every query is plain and read without ldns (no allocation once the thread's name
  // buffer has grown); anything else takes the full ldns parse, which also rejects garbage.
  thread_local DnsQuestion plain;
  DnsQuestion* question = &plain;
  Result<DnsQuestion> parsed = InvalidArgument("unparsed");
  if (!ParsePlainDnsQuery(message, &plain)) {
    parsed = ParseDnsQuery(message);
    if (!parsed.ok()) {
      ++counters_.malformed;
      d.kind = Decision::Kind::kMalformed;
      return d;
    }
    question = &*parsed;
  }
  d.qtype = question->qtype;
  FaultAnswer answer;
  int delay_ms = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& r : rules_) {
      if (!r.rule.scope.empty() && r.rule.scope != scope) continue;
      if (!TypeMatches(r.rule.qtypes, question->qtype)) continue;
      if (!r.rule.matcher.MatchesNormalized(question->name)) continue;
      ++r.counters->seen;
      if (Spared(r.rule.probability)) {
        ++r.counters->passed;
        break;
      }
      d.counters = r.counters;
      answer = r.rule.answer;
      delay_ms = JitteredDelay(r.rule.delay_ms, r.rule.jitter_ms);
      break;
    }
  }
  if (!d.counters || answer.mode == v1::DnsFault::DELAY) {
    d.kind = Decision::Kind::kForward;
    d.delay_ms = delay_ms;
    return d;
  }
  auto response = BuildFaultResponse(message, answer, transport);
  if (!response.ok()) {
    ++counters_.malformed;
    d.kind = Decision::Kind::kMalformed;
    return d;
  }
  if (!response->has_value()) {
    d.kind = Decision::Kind::kDrop;
  } else {
    d.kind = Decision::Kind::kRespond;
    d.response = std::move(**response);
    d.delay_ms = delay_ms;
  }
  return d;
}

Decision DnsRuleTable::DecideReply(std::span<const uint8_t> query, std::span<const uint8_t> reply,
                                   uint16_t qtype, const std::string& scope,
                                   DnsTransport transport) {
  Decision d;
  d.kind = Decision::Kind::kForward;
  {
    std::lock_guard lock(mu_);
    if (rules_.empty()) return d;
  }
  // Only answers that carry a CNAME can be redirected into a faulted name; a cheap scan of the
  // answer section spares the ldns parse of every other reply.
  if (!MayHaveCname(reply)) return d;
  std::vector<std::string> targets = CnameTargets(reply);
  if (targets.empty()) return d;
  FaultAnswer answer;
  {
    std::lock_guard lock(mu_);
    for (const auto& r : rules_) {
      if (!r.rule.scope.empty() && r.rule.scope != scope) continue;
      if (!TypeMatches(r.rule.qtypes, qtype)) continue;
      bool hit = std::any_of(targets.begin(), targets.end(), [&](const std::string& t) {
        return r.rule.matcher.MatchesNormalized(t);
      });
      if (!hit) continue;
      ++r.counters->seen;
      if (Spared(r.rule.probability)) {
        ++r.counters->passed;
        return d;
      }
      ++r.counters->via_cname;
      d.counters = r.counters;
      answer = r.rule.answer;
      d.delay_ms = JitteredDelay(r.rule.delay_ms, r.rule.jitter_ms);
      break;
    }
  }
  if (!d.counters || answer.mode == v1::DnsFault::DELAY) return d;  // the reply itself, late
  auto response = BuildFaultResponse(query, answer, transport);
  if (!response.ok()) {
    d.counters.reset();
    return d;
  }
  if (!response->has_value()) {
    d.kind = Decision::Kind::kDrop;
  } else {
    d.kind = Decision::Kind::kRespond;
    d.response = std::move(**response);
  }
  return d;
}

// Counted after the answer was sent, so whoever sees the counter move can already read the answer.
void DnsRuleTable::CountFaulted(const std::shared_ptr<DnsRuleCounters>& counters) {
  if (!counters) return;
  ++counters->faulted;
}

}  // namespace faultline::agent::dns::internal
