#pragma once
// ProbeSet: runs an experiment's probes during a run and collects their samples, open-loop.
//
// Each probe has a fixed schedule: slot k is at start + k × interval. At every slot a sample is
// sent whether or not earlier samples have answered, so a failing probe that takes its whole
// timeout does not push the next sample out (the measurement's resolution stays the interval,
// not the latency of a failure). At most MaxInFlight(probe) samples of one probe are in flight;
// a slot that finds the bound reached (or that the scheduler reached more than an interval late)
// is not sent and is recorded in ProbeRecord::skipped, never silently dropped. Samples run on a
// small per-probe pool of worker threads, created as needed and never more than the bound.
// Every sample records its send and answer instants with the given Clock, the same monotonic
// clock the run's apply/revert acknowledgements use; samples are kept ordered by send instant.
//
// Threading: Start/Stop from the owner's thread; Samples, Last, Interval and Records are safe
// from any thread while the probes run. The destructor stops the probes.

#include <condition_variable>
#include <deque>
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
  int max_in_flight = 0;               // the bound in force (MaxInFlight)
  std::vector<ProbeSample> samples;    // ordered by sample.at (send instant)
  std::vector<MonoTime> skipped;       // schedule slots not sent (bound reached, or late)
  engine::LatencyPercentiles latency;  // filled by whoever computes it (not by ProbeSet)
};

// The bound on a probe's samples in flight: enough for every slot to be sent when each sample
// takes its whole timeout, ceil(timeout / interval) + 1, at least 4 and at most 64. Pure.
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

  // Starts every probe's schedule. Call once.
  void Start();
  // Stops sending, waits for the samples in flight to answer (each bounded by its probe's
  // timeout) and records them; nothing is recorded or reported afterwards. Idempotent.
  void Stop();

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
    ProbeRecord record;          // guarded by mu_
    int in_flight = 0;           // queued or running; guarded by mu_
    int idle = 0;                // workers waiting for work; guarded by mu_
    std::deque<MonoTime> queue;  // slots to send; guarded by mu_
    std::vector<std::thread> workers;
  };

  void Schedule(Slot& slot);
  void Work(Slot& slot);

  Clock& clock_;
  SampleCallback on_sample_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // schedulers: stop
  std::condition_variable work_cv_;  // workers: queue or stop
  bool stop_ = false;                // guarded by mu_
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::thread> schedulers_;
};

}  // namespace faultline::probes
