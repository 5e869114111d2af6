#pragma once
// ProbeSet: runs an experiment's probes during a run and collects their samples. One thread per
// probe, each sampling on its own fixed-rate schedule (a probe slower than its interval skips
// the slots it overran instead of bunching up); every sample is timestamped with the given
// Clock, the same monotonic clock the run's apply/revert acknowledgements use.
//
// Threading: Start/Stop from the owner's thread; Samples, Last, Interval and Records are safe
// from any thread while the probes run. The destructor stops the probes.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "controller/engine/recovery_meter.h"  // Sample, LatencyPercentiles (types only)
#include "controller/experiment/experiment.h"

namespace faultline::probes {

// One probe attempt: the measurement's sample plus the probe's own words ("200", "NXDOMAIN").
struct ProbeSample {
  engine::Sample sample;
  std::string detail;
};

// Everything one probe recorded during a run.
struct ProbeRecord {
  std::string name;
  Duration interval{};
  std::vector<ProbeSample> samples;    // ordered by sample.at
  engine::LatencyPercentiles latency;  // filled by whoever computes it (not by ProbeSet)
};

class ProbeSet {
 public:
  using SampleCallback = std::function<void(const std::string& probe, const ProbeSample&)>;

  // `probes` must outlive the set (the experiment's probes, already validated). `on_sample`
  // (may be empty) is called with every sample as it is taken, from that probe's own thread:
  // calls for different probes may be concurrent; it must not block.
  ProbeSet(const std::vector<experiment::Probe>& probes, Clock& clock, SampleCallback on_sample);
  ~ProbeSet();
  ProbeSet(const ProbeSet&) = delete;
  ProbeSet& operator=(const ProbeSet&) = delete;

  // Starts one sampling thread per probe. Call once.
  void Start();
  // Stops and joins the threads; no sample is recorded afterwards. Idempotent.
  void Stop();

  // The samples of probe `name` so far (empty for an unknown name).
  std::vector<engine::Sample> Samples(const std::string& name) const;
  // The newest sample of probe `name`, if any.
  std::optional<ProbeSample> Last(const std::string& name) const;
  // The interval of probe `name` (1s for an unknown name).
  Duration Interval(const std::string& name) const;
  // A copy of every probe's record, in the experiment's order.
  std::vector<ProbeRecord> Records() const;

 private:
  struct Slot {
    const experiment::Probe* probe = nullptr;
    ProbeRecord record;
  };

  void Loop(Slot& slot);

  Clock& clock_;
  SampleCallback on_sample_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                         // guarded by mu_
  std::vector<std::unique_ptr<Slot>> slots_;  // records guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace faultline::probes
