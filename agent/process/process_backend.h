#pragma once
// Process fault backend (kind "process"): KILL sends a signal to the selected processes and then
// watches for restarts (a supervisor bringing the process back is observed, never prevented;
// with interval_ms, restarted processes are killed again: a crash loop). PAUSE stops the
// selected processes until revert: through the cgroup v2 freezer when a whole cgroup is selected
// and the freezer is available, with SIGSTOP otherwise; revert thaws the cgroup or sends SIGCONT.
// Every signal goes through a pidfd after checking the process's start time, so a reused pid is
// never signalled (see SignalExactly). What a pause stopped is written to a PauseRecordStore
// before the first SIGSTOP, so RevertOrphan (after an agent crash) continues exactly those
// processes. Evidence: processes_matched, processes_signalled, restarts_observed; for pause also
// processes_paused (seen stopped), processes_continued and cgroup_frozen.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/fault_backend.h"
#include "agent/process/pause_record.h"
#include "agent/process/process_selector.h"

namespace faultline::agent::process {

struct ProcessBackendOptions {
  // Where pause records live (the agent uses <state-dir>/process).
  std::string record_dir;
  // How often a KILL fault without interval_ms looks for restarted processes.
  std::chrono::milliseconds observe_interval{200};
  // The cgroup v2 root directory; empty = /sys/fs/cgroup or /sys/fs/cgroup/unified, whichever
  // is cgroup2 (none: pause of a cgroup falls back to SIGSTOP).
  std::string cgroup_root;
  // Overrides ScopeForThisAgent() (tests).
  std::optional<SelectionScope> scope;
  // Process names protected in addition to DefaultProtectedProcessNames() (--protect-process).
  std::vector<std::string> protected_names;
  // A pause is watched by a guard process that continues the paused processes when the agent
  // dies (agent/host/death_guard.h). Only faultline-agent itself can be the guard.
  bool guard_pauses = false;
  // The longest one selection of processes (/proc scan, pidfile) may take, at apply and in the
  // restart watcher (tests shorten it).
  std::chrono::milliseconds proc_scan_deadline = kProcScanDeadline;
  // Where /proc scans run; null = a pool of the backend's own (4 workers).
  std::shared_ptr<host::HostCallPool> proc_pool;
};

class ProcessBackend final : public FaultBackend {
 public:
  explicit ProcessBackend(ProcessBackendOptions options);

  std::string Kind() const override { return "process"; }
  // OK when /proc is readable, the agent holds CAP_KILL and pidfds work (Linux >= 5.3).
  Status DetectCapability() override;
  Status Validate(const v1::FaultSpec& spec) const override;
  // FAILED_PRECONDITION / NOT_FOUND when nothing matches or nothing could be signalled; on any
  // error every process this call stopped is continued again and the pause record removed.
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override;
  // KILL: nothing to undo. PAUSE: continues the processes in the fault's pause record (only
  // those whose start time still matches) or thaws its cgroup, then removes the record. OK when
  // there is no record (the agent died before it stopped anything). Idempotent.
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override;
  // Everything but a one-shot kill (KILL without interval_ms): its restart is the recovery being
  // rehearsed, observed and never prevented; a crash loop is asked for with interval_ms.
  bool FollowsRestarts(const v1::FaultSpec& spec) const override {
    return !(spec.process().action() == v1::ProcessFault::KILL &&
             spec.process().interval_ms() == 0);
  }

 private:
  Result<std::unique_ptr<FaultHandle>> ApplyKill(const std::string& fault_id,
                                                 const v1::ProcessFault& fault);
  Result<std::unique_ptr<FaultHandle>> ApplyPause(const std::string& fault_id,
                                                  const v1::ProcessFault& fault);
  // The cgroup directory to freeze for this fault, or "" when SIGSTOP must be used.
  std::string FreezableCgroup(const v1::ProcessFault& fault, size_t eligible_matches) const;
  // The cgroup v2 root directory now, or "" when there is none.
  std::string CgroupRoot() const;

  ProcessBackendOptions options_;
  SelectionScope scope_;
  std::shared_ptr<PauseRecordStore> records_;
  std::shared_ptr<host::HostCallPool> proc_pool_;
};

}  // namespace faultline::agent::process
