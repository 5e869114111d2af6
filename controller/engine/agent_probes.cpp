#include "controller/engine/agent_probes.h"

#include <spdlog/fmt/fmt.h>

#include <condition_variable>

#include "common/probes/probe_request.h"

namespace faultline::engine {

using namespace std::chrono_literals;

Result<ClockMapping> MapAgentClock(AgentConnection& client, Clock& clock, Duration deadline,
                                   int exchanges) {
  std::vector<ClockExchange> got;
  Status last = Status::Ok();
  for (int i = 0; i < exchanges; ++i) {
    ClockExchange e;
    e.sent = clock.Now();
    Result<v1::AgentInfo> info = client.GetInfo(deadline);
    e.received = clock.Now();
    if (!info.ok()) {
      last = info.status();
      continue;
    }
    if (info->monotonic_ns() == 0) {
      return FailedPrecondition("agent " + client.endpoint().name +
                                " does not report its clock (an agent older than agent-side "
                                "probes)");
    }
    e.agent = MonoTime(info->monotonic_ns());
    got.push_back(e);
  }
  if (got.empty()) return last;
  return EstimateClockMapping(got);
}

struct AgentProbes::Stream {
  std::string probe;
  std::string agent;  // in messages: the agent, or the workload on it
  std::string where;  // each sample's: "agent" or "agent/workload-name"
  ClockMapping clock;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool done = false;
  Status status = Status::Ok();
  std::unique_ptr<ProbeStream> handle;
};

AgentProbes::AgentProbes(const experiment::Experiment& experiment,
                         std::map<std::string, std::vector<std::string>> targets,
                         std::map<std::string, std::shared_ptr<AgentConnection>> clients,
                         probes::ProbeSet& probes, Clock& clock,
                         std::map<std::string, std::vector<WorkloadTarget>> workloads)
    : exp_(experiment),
      targets_(std::move(targets)),
      clients_(std::move(clients)),
      workloads_(std::move(workloads)),
      probes_(probes),
      clock_(clock) {}

AgentProbes::~AgentProbes() { Stop(); }

Status AgentProbes::Start(const std::string& run_id, Duration duration, Duration deadline) {
  std::map<std::string, ClockMapping> mapped;  // one mapping per agent
  for (const experiment::Probe& p : exp_.probes) {
    if (p.from == "controller") continue;
    Result<v1::ProbeRequest> base = probes::MakeProbeRequest(p, run_id, duration);
    if (!base.ok()) return base.status();
    // Where it runs: every agent of a host target, or every workload picked for a workload target.
    struct Place {
      std::string agent;
      const WorkloadTarget* workload = nullptr;
    };
    std::vector<Place> places;
    if (auto w = workloads_.find(p.from); w != workloads_.end()) {
      for (const WorkloadTarget& t : w->second) places.push_back({t.agent, &t});
    } else {
      for (const std::string& agent : targets_[p.from]) places.push_back({agent, nullptr});
    }
    std::vector<probes::ProbeSite> sites;
    for (const Place& place : places) {
      const std::string& agent = place.agent;
      auto client = clients_.at(agent);
      auto known = mapped.find(agent);
      if (known == mapped.end()) {
        Result<ClockMapping> mapping = MapAgentClock(*client, clock_, deadline);
        if (!mapping.ok()) {
          return Status(mapping.status().code(), "probe " + p.name +
                                                     ": cannot map the clock of agent " + agent +
                                                     ": " + mapping.status().message());
        }
        known = mapped.emplace(agent, *mapping).first;
      }
      const ClockMapping& mapping = known->second;
      v1::ProbeRequest request = *base;
      probes::ProbeSite site{agent, mapping.offset, mapping.error_bound, mapping.rtt, ""};
      auto stream = std::make_unique<Stream>();
      stream->probe = p.name;
      stream->agent = agent;
      stream->where = agent;
      if (place.workload != nullptr) {
        *request.mutable_workload() = SelectorFor(place.workload->workload);
        site.workload = DescribeWorkload(*place.workload);
        stream->where = agent + "/" + place.workload->workload.name();
        stream->agent = site.workload;
      }
      sites.push_back(site);
      stream->clock = mapping;
      Stream* s = stream.get();
      streams_.push_back(std::move(stream));
      s->handle = client->StartProbe(
          request,
          [this, s](const v1::ProbeSample& m) {
            if (m.started()) {
              std::lock_guard lock(s->mu);
              s->started = true;
              s->cv.notify_all();
              return;
            }
            const MonoTime sent = s->clock.ToController(MonoTime(m.sent_ns()));
            if (m.skipped()) {
              probes_.AddRemoteSkip(s->probe, sent);
              return;
            }
            probes::ProbeSample sample;
            sample.sample.at = sent;
            sample.sample.ok = m.ok();
            sample.sample.latency = std::chrono::microseconds(m.latency_us());
            sample.sample.answered = s->clock.ToController(MonoTime(m.answered_ns()));
            sample.sample.clock_error = s->clock.error_bound;
            sample.detail = m.detail();
            sample.where = s->where;
            probes_.AddRemote(s->probe, sample);
          },
          [this, s](Status st) {
            bool was_started;
            {
              std::lock_guard lock(s->mu);
              was_started = s->started;
              s->done = true;
              s->status = st;
              s->cv.notify_all();
            }
            if (was_started && !st.ok() && st.code() != StatusCode::kCancelled) {
              std::lock_guard lock(mu_);
              warnings_.push_back("probe " + s->probe + " on agent " + s->agent +
                                  " stopped: " + st.message());
            }
          });
    }
    probes_.SetSites(p.name, std::move(sites));
  }
  // Every agent must accept its probe (validation, its command list) before anything is injected.
  const MonoTime until = clock_.Now() + deadline;
  for (auto& s : streams_) {
    std::unique_lock lock(s->mu);
    s->cv.wait_for(lock, std::chrono::nanoseconds(std::max<Duration>(0ns, until - clock_.Now())),
                   [&] { return s->started || s->done; });
    if (s->started) continue;
    Status st = s->done ? s->status
                        : DeadlineExceeded("agent " + s->agent + " did not start probe " +
                                           s->probe + " in time");
    lock.unlock();
    Stop();
    return Status(st.code(), "probe " + s->probe + " from agent " + s->agent + ": " + st.message());
  }
  return Status::Ok();
}

void AgentProbes::Stop() {
  for (auto& s : streams_) {
    if (s->handle) s->handle->Cancel();
  }
  for (auto& s : streams_) s->handle.reset();  // waits for the stream's end
}

std::vector<std::string> AgentProbes::Warnings() const {
  std::lock_guard lock(mu_);
  return warnings_;
}

}  // namespace faultline::engine
