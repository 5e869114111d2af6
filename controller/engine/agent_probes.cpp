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
  std::string agent;
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
                         probes::ProbeSet& probes, Clock& clock)
    : exp_(experiment),
      targets_(std::move(targets)),
      clients_(std::move(clients)),
      probes_(probes),
      clock_(clock) {}

AgentProbes::~AgentProbes() { Stop(); }

Status AgentProbes::Start(const std::string& run_id, Duration duration, Duration deadline) {
  for (const experiment::Probe& p : exp_.probes) {
    if (p.from == "controller") continue;
    Result<v1::ProbeRequest> request = probes::MakeProbeRequest(p, run_id, duration);
    if (!request.ok()) return request.status();
    const std::vector<std::string>& agents = targets_[p.from];
    std::vector<probes::ProbeSite> sites;
    for (const std::string& agent : agents) {
      auto client = clients_.at(agent);
      Result<ClockMapping> mapping = MapAgentClock(*client, clock_, deadline);
      if (!mapping.ok()) {
        return Status(mapping.status().code(), "probe " + p.name +
                                                   ": cannot map the clock of agent " + agent +
                                                   ": " + mapping.status().message());
      }
      sites.push_back(
          probes::ProbeSite{agent, mapping->offset, mapping->error_bound, mapping->rtt});
      auto stream = std::make_unique<Stream>();
      stream->probe = p.name;
      stream->agent = agent;
      stream->clock = *mapping;
      Stream* s = stream.get();
      streams_.push_back(std::move(stream));
      s->handle = client->StartProbe(
          *request,
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
            sample.where = s->agent;
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
