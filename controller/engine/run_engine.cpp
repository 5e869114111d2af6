#include "controller/engine/run_engine.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "common/faultspec/fault_kinds.h"
#include "common/ids.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/agent_probes.h"
#include "controller/probes/probe_set.h"

namespace faultline::engine {

using experiment::Objective;
using namespace std::chrono_literals;

namespace {

std::string Secs(Duration d) { return fmt::format("{:.2f}s", ToSeconds(d)); }

// The FaultSpec kind as agents name their capabilities (common/faultspec's table); "" for a spec
// without a known kind, never a guess.
std::string KindOf(const v1::FaultSpec& spec) {
  return std::string(faultspec::FaultKindName(spec));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// The run's clients and in-flight state, shared by the phases and the lease renewer.
struct RunEngine::RunState {
  std::map<std::string, std::shared_ptr<AgentConnection>> clients;
  std::mutex mu;  // guards RunResult::faults and revert_requested while the lease renewer runs
  // Indices into RunResult::faults whose revert has been sent: the renewer leaves them alone (the
  // agent refuses to renew a fault it is reverting, which is no loss of state).
  std::set<size_t> revert_requested;

  std::shared_ptr<AgentConnection> Client(const std::string& name) {
    auto it = clients.find(name);
    return it == clients.end() ? nullptr : it->second;
  }
};

namespace {

// The last run of failures ending at the newest sample: its first failing instant, if the newest
// sample failed.
std::optional<MonoTime> TrailingFailureStart(const std::vector<Sample>& samples) {
  std::optional<MonoTime> start;
  for (auto it = samples.rbegin(); it != samples.rend() && !it->ok; ++it) start = it->at;
  return start;
}

// Span of the trailing run of successes (0 when the newest sample failed or there is none).
std::optional<Duration> TrailingSuccessSpan(const std::vector<Sample>& samples) {
  if (samples.empty() || !samples.back().ok) return std::nullopt;
  MonoTime first = samples.back().at;
  for (auto it = samples.rbegin(); it != samples.rend() && it->ok; ++it) first = it->at;
  return samples.back().at - first;
}

// The host part of an inventory address ("10.77.0.20:7070", "[fd00::1]:7070", "db:7070").
std::string AddressHost(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  size_t colon = address.rfind(':');
  if (colon != std::string::npos && address.find(':') == colon) return address.substr(0, colon);
  return address;
}

}  // namespace

void AddPartitionPeers(const std::vector<std::string>& peer_targets,
                       const std::map<std::string, std::vector<std::string>>& targets,
                       const Inventory& inventory, v1::NetworkSelector* match) {
  std::set<std::string> added(match->cidrs().begin(), match->cidrs().end());
  for (const auto& peer : peer_targets) {
    auto agents = targets.find(peer);
    if (agents == targets.end()) continue;
    for (const auto& name : agents->second) {
      for (const auto& a : inventory.agents) {
        if (a.name != name) continue;
        std::string host = AddressHost(a.address);
        if (!added.insert(host).second) continue;
        bool ip = host.find_first_not_of("0123456789.") == std::string::npos ||
                  host.find(':') != std::string::npos;
        if (ip) {
          match->add_cidrs(host);
        } else {
          match->add_hosts(host);
        }
      }
    }
  }
}

RunEngine::~RunEngine() = default;

RunEngine::RunEngine(const experiment::Experiment& experiment, Inventory inventory,
                     RunOptions options)
    : exp_(experiment),
      inventory_(std::move(inventory)),
      options_(std::move(options)),
      clock_(*options_.clock) {
  if (options_.run_id.empty()) options_.run_id = NewRunId();
}

void RunEngine::Cancel(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    cancel_reason_ = why;
    cancelled_ = true;
  }
  cv_.notify_all();
}

bool RunEngine::WaitUntil(MonoTime until) {
  std::unique_lock lock(mu_);
  auto wait = until - clock_.Now();
  if (wait > 0ns) cv_.wait_for(lock, wait, [&] { return cancelled_.load(); });
  return !cancelled_;
}

void RunEngine::Progress(const std::string& phase, const std::string& message,
                         const FaultOnAgent* fault) {
  if (options_.on_progress) {
    options_.on_progress(ProgressEvent{clock_.Now(), phase, message, fault});
  }
}

RunResult RunEngine::Run() {
  state_ = std::make_unique<RunState>();
  RunResult r;
  r.experiment = exp_.name;
  r.run_id = options_.run_id;
  r.started = clock_.Now();
  r.started_unix_ms = clock_.WallUnixMs();

  Duration longest_fault = 0s, longest_after = 0s;
  for (const auto& f : exp_.faults) longest_fault = std::max(longest_fault, f.duration);
  for (const auto& o : exp_.objectives) {
    if (o.after == Objective::Phase::kRevert) {
      longest_after = std::max(longest_after, o.recover_within + o.stable_for);
    }
  }
  Duration max_duration =
      exp_.max_duration.value_or(exp_.steady_state.timeout + longest_fault + longest_after + 60s);
  deadline_ = r.started + max_duration;

  auto finish = [&](Verdict v, const std::string& reason) {
    r.verdict = v;
    r.reason = reason;
    r.ended = clock_.Now();
    r.ended_unix_ms = clock_.WallUnixMs();
    Progress("verdict", std::string(VerdictName(v)) + ": " + reason);
    return r;
  };

  if (!ResolveTargets(r)) return finish(Verdict::kError, r.reason);
  if (!CheckAgents(r)) return finish(Verdict::kError, r.reason);
  if (!ResolveWorkloads(r)) return finish(Verdict::kError, r.reason);

  ProbeSet probes(exp_.probes, clock_, options_.on_sample);
  probes.Start();
  // Agent-side probes (`from: <target>`): declared after the set, so destroyed (and every stream
  // ended) before it. Each stream lasts at most the run's cap, so one the controller forgets
  // (killed) ends on the agent by itself.
  AgentProbes agent_probes(exp_, r.targets, state_->clients, probes, clock_, r.workload_targets);
  if (Status s = agent_probes.Start(r.run_id, max_duration + 60s, options_.rpc_deadline); !s.ok()) {
    probes.Stop();
    r.probes = probes.Records();
    return finish(Verdict::kError, s.message());
  }
  // Prometheus alert abort conditions; like the probes, watched from before injection on.
  alert_watch_ = std::make_unique<probes::AlertWatch>(exp_.aborts);
  alert_watch_->Start();

  if (!AwaitSteadyState(probes, r)) {
    agent_probes.Stop();
    probes.Stop();
    r.probes = probes.Records();
    return finish(Verdict::kAborted, r.reason);
  }
  if (Cancelled()) {
    agent_probes.Stop();
    probes.Stop();
    r.probes = probes.Records();
    return finish(Verdict::kAborted, "cancelled before injection: " + cancel_reason_);
  }
  // An alert already firing is a stop condition before anything is injected (as in AWS FIS).
  if (auto why = alert_watch_->Firing()) {
    agent_probes.Stop();
    probes.Stop();
    r.probes = probes.Records();
    return finish(Verdict::kAborted, *why + " (nothing was injected)");
  }

  if (!ApplyAll(r)) {
    RevertAll(r, "apply failed");
    agent_probes.Stop();
    probes.Stop();
    r.probes = probes.Records();
    return finish(Verdict::kError, r.reason);
  }

  std::atomic<bool> renewing{true};
  std::thread renewer([&] {
    Duration period = std::max<Duration>(options_.lease_ttl / 3, 100ms);
    MonoTime next = clock_.Now() + period;
    while (renewing) {
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, next - clock_.Now(), [&] { return !renewing.load(); });
      }
      if (!renewing) break;
      RenewLeases(r);
      next += period;
    }
  });
  auto stop_renewer = [&] {
    renewing = false;
    cv_.notify_all();
    if (renewer.joinable()) renewer.join();
  };

  Observe(probes, r);
  std::string abort_reason = r.reason;  // set by Observe when it stopped early
  bool aborted = Cancelled() || !abort_reason.empty();
  if (aborted && abort_reason.empty()) abort_reason = cancel_reason_;
  // No renewals once the revert starts (RevertAll also marks each fault revert_requested, which is
  // what keeps a renewal in flight from reading the agent's "being reverted" as a lost fault).
  stop_renewer();
  RevertAll(r, aborted ? "aborted" : "duration elapsed");
  if (!aborted) ObserveAfterRevert(probes, r);
  agent_probes.Stop();
  probes.Stop();
  alert_watch_->Stop();
  r.probes = probes.Records();
  for (std::string& w : agent_probes.Warnings()) r.warnings.push_back(std::move(w));
  ComputeVerdict(r, aborted, abort_reason);
  return finish(r.verdict, std::string(r.reason));
}

bool RunEngine::ResolveTargets(RunResult& r) {
  std::seed_seq seed(options_.run_id.begin(), options_.run_id.end());
  std::mt19937 rng(seed);
  for (const auto& t : exp_.targets) {
    std::vector<std::string> matching;
    for (const auto& a : inventory_.agents) {
      if (MatchesSelector(a, t.selector)) matching.push_back(a.name);
    }
    std::string sel;
    for (const auto& [k, v] : t.selector) sel += (sel.empty() ? "" : ",") + k + "=" + v;
    if (matching.empty()) {
      r.reason = "target " + t.name + ": no agent in the inventory matches {" + sel + "}";
      return false;
    }
    size_t n = matching.size();
    using K = experiment::TargetMode::Kind;
    // With `workloads:`, mode picks among workloads (ResolveWorkloads), so every agent is asked.
    switch (t.workloads ? K::kAll : t.mode.kind) {
      case K::kAll:
        break;
      case K::kOne:
        n = 1;
        break;
      case K::kFixed:
        if (static_cast<size_t>(t.mode.value) > matching.size()) {
          r.reason = fmt::format("target {}: fixed:{} asks for more agents than match ({})", t.name,
                                 t.mode.value, matching.size());
          return false;
        }
        n = t.mode.value;
        break;
      case K::kPercent:
        n = std::max<size_t>(1, matching.size() * t.mode.value / 100);
        break;
    }
    // Which subset is chosen is random but reproducible from the run id.
    std::shuffle(matching.begin(), matching.end(), rng);
    matching.resize(n);
    std::sort(matching.begin(), matching.end());
    r.targets[t.name] = matching;
    std::string names;
    for (const auto& m : matching) names += (names.empty() ? "" : ", ") + m;
    Progress("targets", t.name + " {" + sel + "} → " + names);
  }
  return true;
}

bool RunEngine::ResolveWorkloads(RunResult& r) {
  std::seed_seq seed(options_.run_id.begin(), options_.run_id.end());
  std::mt19937 rng(seed);
  for (const auto& t : exp_.targets) {
    if (!t.workloads) continue;
    std::vector<WorkloadTarget> matched;
    const std::vector<std::string>& agents = r.targets[t.name];
    std::vector<Result<v1::ListWorkloadsResponse>> answers = FanOut<v1::ListWorkloadsResponse>(
        agents.size(),
        [&](size_t i, Duration deadline, auto done) {
          done(state_->Client(agents[i])->ListWorkloads(*t.workloads, deadline));
        },
        FanOutFor(options_.rpc_attempts));
    for (size_t i = 0; i < agents.size(); ++i) {
      if (!answers[i].ok()) {
        r.reason = "target " + t.name + ": workload discovery on agent " + agents[i] +
                   " failed: " + answers[i].status().message();
        return false;
      }
      for (const auto& [runtime, why] : answers[i]->runtime_errors()) {
        r.warnings.push_back("target " + t.name + ": agent " + agents[i] + ": runtime " + runtime +
                             ": " + why);
      }
      for (const v1::Workload& w : answers[i]->workloads()) matched.push_back({agents[i], w});
    }
    const size_t found = matched.size();
    auto picked = PickWorkloads(std::move(matched), t.mode, rng);
    if (!picked.ok()) {
      std::string on;
      for (const auto& a : agents) on += (on.empty() ? "" : ", ") + a;
      r.reason = "target " + t.name + ": " +
                 (found == 0 ? "no workload matches " + t.workloads->ShortDebugString() +
                                   " on agents " + on
                             : picked.status().message());
      return false;
    }
    std::set<std::string> used;
    for (const WorkloadTarget& w : *picked) {
      used.insert(w.agent);
      Progress("targets", t.name + " → " + DescribeWorkload(w));
    }
    r.targets[t.name].assign(used.begin(), used.end());
    r.workload_targets[t.name] = std::move(*picked);
  }
  return true;
}

bool RunEngine::CheckAgents(RunResult& r) {
  if (!options_.connect && !options_.agent_credentials) {
    r.reason = "no credentials to reach the agents (RunOptions::agent_credentials is unset)";
    return false;
  }
  std::set<std::string> needed;
  for (const auto& [t, agents] : r.targets) needed.insert(agents.begin(), agents.end());
  for (const auto& name : needed) {
    auto it = std::find_if(inventory_.agents.begin(), inventory_.agents.end(),
                           [&](const AgentEndpoint& a) { return a.name == name; });
    state_->clients[name] = options_.connect
                                ? options_.connect(*it)
                                : std::make_shared<AgentClient>(*it, options_.agent_credentials);
  }
  // Ask every agent concurrently: a fleet check should not take N deadlines.
  std::vector<std::string> names(needed.begin(), needed.end());
  std::vector<Result<v1::AgentInfo>> infos = FanOut<v1::AgentInfo>(
      names.size(),
      [&](size_t i, Duration deadline, auto done) {
        state_->Client(names[i])->GetInfoAsync(deadline, std::move(done));
      },
      FanOutFor(options_.rpc_attempts));
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    auto& info = infos[i];
    if (!info.ok()) {
      r.reason = "agent unreachable: " + info.status().message();
      return false;
    }
    for (const auto& f : exp_.faults) {
      const auto& agents = r.targets[f.target];
      if (std::find(agents.begin(), agents.end(), name) == agents.end()) continue;
      std::string kind = KindOf(f.spec);
      const auto& caps = info->capabilities();
      if (std::find(caps.begin(), caps.end(), kind) == caps.end()) {
        auto why = info->missing_capabilities().find(kind);
        r.reason = "agent " + name + " cannot apply fault " + f.name + " (" + kind + ")" +
                   (why != info->missing_capabilities().end() ? ": " + why->second : "");
        return false;
      }
    }
    Progress("targets", name + " ready (agent " + info->version() + ", " +
                            std::to_string(info->active_faults()) + " active faults)");
  }
  return true;
}

bool RunEngine::AwaitSteadyState(ProbeSet& probes, RunResult& r) {
  const auto& ss = exp_.steady_state;
  if (ss.probes.empty()) return true;
  std::string names;
  for (const auto& p : ss.probes) names += (names.empty() ? "" : ", ") + p;
  Progress("steady", "waiting for " + names + " to succeed for " + FormatDuration(ss.hold_for));
  MonoTime give_up = clock_.Now() + ss.timeout;
  while (true) {
    bool held = true;
    for (const auto& p : ss.probes) {
      auto span = TrailingSuccessSpan(probes.Samples(p));
      if (!span || *span < ss.hold_for) held = false;
    }
    if (held) {
      Progress("steady", "steady state held for " + FormatDuration(ss.hold_for));
      return true;
    }
    if (clock_.Now() >= give_up) {
      std::string last;
      for (const auto& p : ss.probes) {
        if (auto s = probes.Last(p)) last += " " + p + ": " + s->detail;
      }
      r.reason = "steady state not reached within " + FormatDuration(ss.timeout) +
                 " (nothing was injected);" + last;
      return false;
    }
    if (!WaitUntil(clock_.Now() + 50ms)) {
      r.reason = "cancelled before injection: " + cancel_reason_;
      return false;
    }
  }
}

FanOutOptions RunEngine::FanOutFor(int attempts) const {
  FanOutOptions f;
  f.max_in_flight = options_.max_in_flight;
  f.attempt_deadline = options_.rpc_deadline;
  f.max_attempts = attempts;
  return f;
}

bool RunEngine::ApplyAll(RunResult& r) {
  int index = 0;
  std::vector<v1::ApplyFaultRequest> requests;
  for (const auto& f : exp_.faults) {
    const std::string base_id = MakeFaultId(options_.run_id, index++);
    // One application per agent, or per picked workload (each with its own fault id, since one
    // agent may host several).
    std::vector<std::pair<std::string, const v1::Workload*>> places;
    if (auto wt = r.workload_targets.find(f.target); wt != r.workload_targets.end()) {
      for (const WorkloadTarget& w : wt->second) places.push_back({w.agent, &w.workload});
    } else {
      for (const auto& agent : r.targets[f.target]) places.push_back({agent, nullptr});
    }
    for (size_t k = 0; k < places.size(); ++k) {
      const auto& [agent, workload] = places[k];
      const std::string fault_id =
          workload == nullptr ? base_id : base_id + "w" + std::to_string(k);
      FaultOnAgent fa;
      fa.fault_name = f.name;
      fa.fault_id = fault_id;
      fa.target = f.target;
      fa.agent = agent;
      fa.kind = KindOf(f.spec);
      if (workload != nullptr) fa.workload = *workload;
      r.faults.push_back(fa);
      v1::ApplyFaultRequest req;
      req.set_run_id(options_.run_id);
      req.set_fault_id(fault_id);
      if (workload != nullptr) *req.mutable_workload() = SelectorFor(*workload);
      *req.mutable_spec() = f.spec;
      if (!f.partition_peer_targets.empty() && req.spec().has_network()) {
        AddPartitionPeers(f.partition_peer_targets, r.targets, inventory_,
                          req.mutable_spec()->mutable_network()->mutable_match());
      }
      req.set_lease_ttl_ms(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl).count()));
      requests.push_back(std::move(req));
    }
  }
  // Every (fault, agent) at once, bounded; a lost ack is retried with the same fault id, which
  // the agent applies once. The ack instant is when this process learned the fault is in effect
  // on that agent, taken as each answer arrives.
  std::vector<MonoTime> acked(requests.size());
  std::vector<Result<v1::FaultStatus>> results = FanOut<v1::FaultStatus>(
      requests.size(),
      [&](size_t i, Duration deadline, auto done) {
        state_->Client(r.faults[i].agent)->ApplyFaultAsync(requests[i], deadline, std::move(done));
      },
      FanOutFor(options_.rpc_attempts),
      [&](size_t i, const Result<v1::FaultStatus>&) { acked[i] = clock_.Now(); });
  bool ok = true;
  for (size_t i = 0; i < results.size(); ++i) {
    auto& res = results[i];
    std::lock_guard lock(state_->mu);
    auto& fa = r.faults[i];
    if (!res.ok()) {
      fa.error = res.status().message();
      ok = false;
      r.reason = "fault " + fa.fault_name + " could not be applied: " + fa.error;
      Progress("inject", fa.fault_name + " on " + fa.agent + ": FAILED: " + fa.error, &fa);
      continue;
    }
    fa.applied_at = acked[i];
    fa.applied_at_unix_ms = res->applied_at_unix_ms();
    if (!r.t_inject_first || acked[i] < *r.t_inject_first) r.t_inject_first = acked[i];
    if (!r.t_inject || acked[i] > *r.t_inject) r.t_inject = acked[i];
    Progress("inject",
             fa.fault_name + " applied on " + fa.agent + " (fault " + fa.fault_id + ", lease " +
                 FormatDuration(options_.lease_ttl) + ")",
             &fa);
  }
  return ok;
}

void RunEngine::RenewLeases(RunResult& r) {
  std::vector<std::pair<size_t, std::shared_ptr<AgentConnection>>> todo;
  {
    std::lock_guard lock(state_->mu);
    for (size_t i = 0; i < r.faults.size(); ++i) {
      if (r.faults[i].applied_at && !state_->revert_requested.count(i)) {
        todo.emplace_back(i, state_->Client(r.faults[i].agent));
      }
    }
  }
  std::vector<std::string> ids;
  {
    std::lock_guard lock(state_->mu);
    for (auto& [i, client] : todo) ids.push_back(r.faults[i].fault_id);
  }
  // Every renewal at once: one silent agent must not hold the others' renewals past their lease.
  // One attempt each: the next round is the retry.
  std::vector<MonoTime> answered(todo.size());
  std::vector<Result<v1::FaultStatus>> results = FanOut<v1::FaultStatus>(
      todo.size(),
      [&](size_t k, Duration deadline, auto done) {
        todo[k].second->RenewLeaseAsync(ids[k], options_.lease_ttl, deadline, std::move(done));
      },
      FanOutFor(1), [&](size_t k, const Result<v1::FaultStatus>&) { answered[k] = clock_.Now(); });
  for (size_t k = 0; k < todo.size(); ++k) {
    const size_t i = todo[k].first;
    auto& res = results[k];
    MonoTime now = answered[k];
    std::lock_guard lock(state_->mu);
    if (state_->revert_requested.count(i)) continue;  // raced with our own revert
    // Once the run is cancelled (a halt reverts every fault fleet-wide at the same time), the
    // revert phase that follows asks each agent and classifies the fault; a renewal failing now
    // says nothing more.
    if (Cancelled()) continue;
    auto& fa = r.faults[i];
    if (res.ok() && res->state() == v1::ACTIVE) {
      fa.last_confirmed = now;
      continue;
    }
    if (res.ok()) {
      // The agent reverted it on its own (lease expiry, halt, restart): the fault window was cut
      // short, so nothing measured from here on says anything about this fault.
      fa.state_unknown = true;
      fa.error = "the agent reports the fault no longer active (" + res->revert_reason() + ")";
      Cancel("fault " + fa.fault_name + " on " + fa.agent + " ended early: " + fa.error);
      continue;
    }
    fa.error = "lease renewal failed: " + res.status().message();
    Progress("observe", fa.fault_name + " on " + fa.agent + ": " + fa.error);
    auto code = res.status().code();
    bool definitive = code == StatusCode::kNotFound || code == StatusCode::kFailedPrecondition;
    // A transient failure is retried on the next round, but once a whole lease has passed without
    // a confirmation the agent has reverted on its own (or is gone): the state is unknown.
    bool lease_lapsed = now - fa.last_confirmed.value_or(*fa.applied_at) >= options_.lease_ttl;
    if (definitive || lease_lapsed) {
      fa.state_unknown = true;
      Cancel("fault " + fa.fault_name + " on " + fa.agent + " lost: " + fa.error);
    }
  }
}

std::optional<std::string> RunEngine::AbortTriggered(ProbeSet& probes, MonoTime now) {
  if (alert_watch_) {
    if (auto why = alert_watch_->Firing()) return why;
  }
  for (const auto& a : exp_.aborts) {
    if (a.probe.empty()) continue;  // a Prometheus alert: alert_watch_
    auto start = TrailingFailureStart(probes.Samples(a.probe));
    if (start && now - *start >= a.failing_for) {
      return "abort condition: " + a.probe + " failing for " + FormatDuration(a.failing_for);
    }
  }
  if (now >= deadline_) return std::string("max_duration reached");
  return std::nullopt;
}

void RunEngine::Observe(ProbeSet& probes, RunResult& r) {
  r.reason.clear();
  MonoTime t0 = *r.t_inject;
  // Each fault is reverted when its own duration is up; the "during fault" window of the
  // objectives ends with the first revert (ComputeVerdict uses t_revert_start).
  MonoTime end = t0;
  for (const auto& f : exp_.faults) end = std::max(end, t0 + f.duration);
  std::set<std::string> reverted;

  std::map<std::string, std::string> shown;  // objective → last state shown
  MonoTime next_heartbeat = t0 + 5s;
  while (true) {
    MonoTime now = clock_.Now();
    for (const auto& f : exp_.faults) {
      if (now >= t0 + f.duration && reverted.insert(f.name).second && t0 + f.duration < end) {
        RevertAll(r, "duration elapsed", f.name);
      }
    }
    if (now >= end) break;
    if (auto why = AbortTriggered(probes, now)) {
      r.reason = *why;
      Progress("observe", "ABORT: " + *why);
      return;
    }
    for (const auto& o : exp_.objectives) {
      if (o.after != Objective::Phase::kInject || o.kind != Objective::Kind::kRecover) continue;
      auto fig = MeasureRecovery(probes.Samples(o.probe),
                                 {t0, now, o.stable_for, probes.Interval(o.probe)});
      std::string st;
      if (fig.time_to_recover && !fig.no_impact) {
        st = "recovered at +" + Secs(*fig.time_to_recover) + " (stable " +
             FormatDuration(o.stable_for) + ")";
      } else if (fig.time_to_detect) {
        st = "impact detected at +" + Secs(*fig.time_to_detect);
      }
      if (!st.empty() && shown[o.name] != st) {
        shown[o.name] = st;
        Progress("observe",
                 o.name + ": " + st + " (objective " + FormatDuration(o.recover_within) + ")");
      }
    }
    if (now >= next_heartbeat) {
      std::string probes_line;
      for (const auto& p : exp_.probes) {
        if (auto s = probes.Last(p.name)) {
          probes_line += " " + p.name + "=" + (s->sample.ok ? "ok" : "FAIL(" + s->detail + ")");
        }
      }
      Progress("observe", fmt::format("{} of {} fault window;{}", Secs(now - t0), Secs(end - t0),
                                      probes_line));
      next_heartbeat += 5s;
    }
    if (!WaitUntil(std::min(end, now + 100ms))) return;
  }
}

void RunEngine::RevertAll(RunResult& r, const std::string& why, const std::string& only_fault) {
  if (!r.t_revert_start) r.t_revert_start = clock_.Now();
  struct Pending {
    size_t slot;
    std::shared_ptr<AgentConnection> client;
    std::string fault_id;
  };
  std::vector<Pending> pending;
  {
    std::lock_guard lock(state_->mu);
    for (size_t i = 0; i < r.faults.size(); ++i) {
      auto& fa = r.faults[i];
      if (fa.reverted_at || (!only_fault.empty() && fa.fault_name != only_fault)) continue;
      state_->revert_requested.insert(i);
      // Revert even faults whose apply failed or timed out: the agent may have applied it anyway,
      // and reverting an unknown id is a no-op.
      pending.push_back({i, state_->Client(fa.agent), fa.fault_id});
    }
  }
  std::vector<MonoTime> answered(pending.size());
  std::vector<Result<v1::FaultStatus>> results = FanOut<v1::FaultStatus>(
      pending.size(),
      [&](size_t k, Duration deadline, auto done) {
        pending[k].client->RevertFaultAsync(pending[k].fault_id, deadline, std::move(done));
      },
      FanOutFor(options_.rpc_attempts),
      [&](size_t k, const Result<v1::FaultStatus>&) { answered[k] = clock_.Now(); });
  for (size_t k = 0; k < pending.size(); ++k) {
    auto& res = results[k];
    MonoTime acked = answered[k];
    std::lock_guard lock(state_->mu);
    auto& fa = r.faults[pending[k].slot];
    if (!res.ok()) {
      fa.state_unknown = true;
      fa.error = "revert failed: " + res.status().message() + "; the agent reverts it itself " +
                 "when its lease (" + FormatDuration(options_.lease_ttl) + ") expires";
      Progress("revert", fa.fault_name + " on " + fa.agent + ": " + fa.error, &fa);
      continue;
    }
    if (!fa.applied_at) continue;
    // A halt's revert-all during a cancelled run is the abort itself: the fault's state is known.
    bool halted = Cancelled() && res->revert_reason() == "revert-all";
    if (!res->revert_reason().empty() && res->revert_reason() != "request" && !halted) {
      // Someone else ended it first (lease expiry, agent restart, halt): the fault did not last
      // the window this run measured.
      fa.state_unknown = true;
      fa.error = "the agent had already reverted the fault (" + res->revert_reason() +
                 ") before this run asked";
    }
    fa.reverted_at = acked;
    fa.reverted_at_unix_ms = res->reverted_at_unix_ms();
    fa.revert_reason = res->revert_reason();
    for (const auto& [k, v] : res->evidence()) fa.evidence[k] = v;
    if (!r.t_revert || acked > *r.t_revert) r.t_revert = acked;
    std::string ev;
    for (const auto& [k, v] : fa.evidence)
      ev += (ev.empty() ? "" : ", ") + k + "=" + std::to_string(v);
    Progress("revert",
             fa.fault_name + " reverted on " + fa.agent + " (" + why +
                 "; evidence: " + (ev.empty() ? "none" : ev) + ")",
             &fa);
  }
  if (!r.t_revert) r.t_revert = clock_.Now();
}

void RunEngine::ObserveAfterRevert(ProbeSet& probes, RunResult& r) {
  std::vector<const Objective*> after;
  for (const auto& o : exp_.objectives) {
    if (o.after == Objective::Phase::kRevert) after.push_back(&o);
  }
  if (after.empty()) return;
  MonoTime t0 = *r.t_revert;
  Progress("after", "observing recovery after revert");
  while (true) {
    MonoTime now = clock_.Now();
    bool all_decided = true;
    for (const auto* o : after) {
      Duration interval = probes.Interval(o->probe);
      auto fig = MeasureRecovery(probes.Samples(o->probe), {t0, now, o->stable_for, interval});
      bool decided = (fig.time_to_recover && !fig.no_impact) ||
                     (fig.no_impact && fig.samples > 0 && now - t0 >= o->stable_for + interval) ||
                     now - t0 >= o->recover_within + o->stable_for + interval;
      if (!decided) all_decided = false;
    }
    if (all_decided) return;
    if (auto why = AbortTriggered(probes, now)) {
      Progress("after", "stopping observation: " + *why);
      return;
    }
    if (!WaitUntil(now + 100ms)) return;
  }
}

void RunEngine::ComputeVerdict(RunResult& r, bool aborted, const std::string& abort_reason) {
  MonoTime end_of_observation = clock_.Now();
  for (auto& rec : r.probes) {
    std::vector<Sample> s;
    for (const auto& ps : rec.samples) s.push_back(ps.sample);
    rec.latency = ComputeLatency(s);
  }
  VerdictInput in;
  in.objectives = exp_.objectives;
  in.probes = r.probes;
  in.faults = r.faults;
  in.t_inject = r.t_inject;
  in.t_revert_start = r.t_revert_start;
  in.t_revert = r.t_revert;
  in.end_of_observation = end_of_observation;
  in.aborted = aborted;
  in.abort_reason = abort_reason;
  VerdictOutcome decided = DecideVerdict(in);
  r.verdict = decided.verdict;
  r.reason = decided.reason;
  r.objectives = std::move(decided.objectives);
  r.warnings.insert(r.warnings.end(), decided.warnings.begin(), decided.warnings.end());
  // Did the fault bite? Each kind names the evidence counter that shows it acted on something.
  const bool no_impact = std::any_of(r.objectives.begin(), r.objectives.end(), [](const auto& o) {
    return o.phase == Objective::Phase::kInject && o.figures.no_impact;
  });
  for (const auto& fa : r.faults) {
    const faultspec::FaultKind* kind = faultspec::FindFaultKind(fa.kind);
    if (!fa.applied_at || kind == nullptr) continue;
    auto it = fa.evidence.find(std::string(kind->injected_evidence));
    if (it == fa.evidence.end()) continue;
    if (it->second == 0) {
      r.warnings.push_back(fmt::format(
          "fault {} on {}: {} is 0: the fault acted on nothing (nothing on that host reached it)",
          fa.fault_name, fa.agent, it->first));
    } else if (no_impact) {
      r.warnings.push_back(
          fmt::format("fault {} on {}: {} is {}: the fault acted, yet the probe never failed",
                      fa.fault_name, fa.agent, it->first, it->second));
    }
  }
}

}  // namespace faultline::engine
