#pragma once
// ProbeSet: runs an experiment's probes during a run and collects their samples, open-loop.
//
// Each `from: controller` probe runs on this host on its own OpenLoopSampler
// (common/probes/open_loop.h): a fixed schedule, a sample sent at every slot whether or not
// earlier samples have answered, at most MaxInFlight(probe) in flight, and a slot not sent
// recorded in ProbeRecord::skipped, never silently dropped. Agent-side probes (`from: <target>`)
// are not run here: their samples, already mapped to this clock, are added with AddRemote by
// whoever reads the agents' streams (the run engine). Every sample records its send and answer
// instants on the given Clock, the same monotonic clock the run's apply/revert acknowledgements
// use; samples are kept ordered by send instant.
//
// Threading: Start/Stop from the owner's thread; AddRemote, Samples, Last, Interval and Records
// are safe from any thread while the probes run. The destructor stops the probes.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/probes/open_loop.h"
#include "controller/engine/recovery_meter.h"  // Sample, LatencyPercentiles (types only)
#include "controller/experiment/experiment.h"

namespace faultline::probes {

// One probe attempt: the measurement's sample plus the probe's own words ("200", "NXDOMAIN").
struct ProbeSample {
  engine::Sample sample;  // on the controller's clock (an agent's sample already mapped)
  std::string detail;
  std::string where{};  // "" for the controller; the agent's name for an agent-side sample
};

// One agent an agent-side probe ran on, with its clock mapping (controller/engine/clock_mapping.h).
struct ProbeSite {
  std::string agent;
  Duration clock_offset{};  // agent − controller, estimated
  Duration clock_error{};   // the mapping's error bound: widens every bracket from these samples
  Duration clock_rtt{};     // round trip of the exchange the mapping came from
  std::string workload;     // set when it ran inside a workload: DescribeWorkload's name of it
};

// Everything one probe recorded during a run.
struct ProbeRecord {
  std::string name;
  std::string from = "controller";  // the experiment's `from:` (a target name: agent-side)
  std::vector<ProbeSite> sites;     // agent-side: the agents it ran on (SetSites); empty: here
  Duration interval{};
  int max_in_flight = 0;               // the bound in force (MaxInFlight)
  std::vector<ProbeSample> samples;    // ordered by sample.at (send instant)
  std::vector<MonoTime> skipped;       // schedule slots not sent (bound reached, or late)
  engine::LatencyPercentiles latency;  // filled by whoever computes it (not by ProbeSet)
};

// MaxInFlight(probe.interval, probe.timeout) (common/probes/open_loop.h). Pure.
int MaxInFlight(const experiment::Probe& probe);

class ProbeSet {
 public:
  using SampleCallback = std::function<void(const std::string& probe, const ProbeSample&)>;

  // `probes` must outlive the set (the experiment's probes, already validated). `on_sample`
  // (may be empty) is called with every sample as it is answered, from a worker thread: calls
  // may be concurrent, come in answer order (not send order), and must not block.
  ProbeSet(const std::vector<experiment::Probe>& probes, Clock& clock, SampleCallback on_sample);
  ~ProbeSet();
  ProbeSet(const ProbeSet&) = delete;
  ProbeSet& operator=(const ProbeSet&) = delete;

  // Starts every `from: controller` probe's schedule. Call once.
  void Start();
  // Stops sending, waits for the samples in flight to answer (each bounded by its probe's
  // timeout) and records them; nothing is recorded or reported afterwards (AddRemote included).
  // Idempotent.
  void Stop();

  // Records a sample of agent-side probe `name` taken on agent `sample.where` (mapped to this
  // set's clock), or a slot that agent skipped (`skipped`, sample ignored). Ignored for an
  // unknown name or after Stop. Any thread.
  void AddRemote(const std::string& name, const ProbeSample& sample);
  void AddRemoteSkip(const std::string& name, MonoTime slot);
  // Where agent-side probe `name` runs (its agents and their clock mappings), for the report.
  // Any thread.
  void SetSites(const std::string& name, std::vector<ProbeSite> sites);

  // The samples of probe `name` answered so far, in send order (empty for an unknown name).
  std::vector<engine::Sample> Samples(const std::string& name) const;
  // The answered sample of probe `name` sent last, if any.
  std::optional<ProbeSample> Last(const std::string& name) const;
  // The interval of probe `name` (1s for an unknown name).
  Duration Interval(const std::string& name) const;
  // A copy of every probe's record, in the experiment's order.
  std::vector<ProbeRecord> Records() const;

 private:
  struct Slot {
    const experiment::Probe* probe = nullptr;
    ProbeRecord record;                        // guarded by mu_
    std::unique_ptr<OpenLoopSampler> sampler;  // from: controller only
  };

  Slot* Find(const std::string& name);
  void Record(Slot& slot, const ProbeSample& sample);  // takes mu_

  Clock& clock_;
  SampleCallback on_sample_;
  mutable std::mutex mu_;
  bool stopped_ = false;  // guarded by mu_
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace faultline::probes
