#include "agent/process/process_backend.h"

#include <linux/magic.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "agent/host/death_guard.h"
#include "common/faultspec/fault_kinds.h"
#include "common/ids.h"

namespace faultline::agent::process {
namespace {

using std::chrono::milliseconds;
using ProcessKey = std::pair<int, uint64_t>;  // pid, start time

constexpr int kCapKill = 5;  // linux/capability.h
constexpr auto kAwaitStopped = milliseconds(1000);
constexpr auto kAwaitPoll = milliseconds(10);

bool IsCgroup2(const std::string& dir) {
  struct statfs fs {};
  return statfs(dir.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

std::optional<std::string> ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

Status WriteControlFile(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  if (!out) return Internal("cannot open " + path);
  out << value << std::flush;
  if (!out) return Internal("cannot write '" + value + "' to " + path);
  return Status::Ok();
}

bool CgroupFrozen(const std::string& dir) {
  std::ifstream in(dir + "/cgroup.events");
  std::string key, value;
  while (in >> key >> value) {
    if (key == "frozen") return value == "1";
  }
  return false;
}

// Continues what a pause stopped: thaws the cgroup, or SIGCONTs each recorded process that
// still has its recorded start time. Adds the number continued to `continued`. Processes that
// exited meanwhile are skipped; any other failure is returned (after trying all of them).
Status ResumePaused(const PauseRecord& record, uint64_t* continued) {
  if (!record.frozen_cgroup_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(record.frozen_cgroup_dir + "/cgroup.freeze", ec)) {
      return Status::Ok();  // the cgroup is gone, and its processes with it
    }
    if (Status s = WriteControlFile(record.frozen_cgroup_dir + "/cgroup.freeze", "0"); !s.ok()) {
      return s;
    }
    *continued += record.processes.size();
    return Status::Ok();
  }
  std::string failures;
  for (const PausedProcess& p : record.processes) {
    Status s = SignalExactly(p.pid, p.start_time, SIGCONT);
    if (s.ok()) {
      ++*continued;
    } else if (s.code() != StatusCode::kNotFound) {
      failures += (failures.empty() ? "" : "; ") + s.message();
    }
  }
  if (!failures.empty()) return Internal("process: SIGCONT failed: " + failures);
  return Status::Ok();
}

std::string Pids(const std::vector<ProcessInfo>& processes) {
  std::string out;
  for (const ProcessInfo& p : processes) out += (out.empty() ? "" : ",") + std::to_string(p.pid);
  return out;
}

// KILL: the signal is sent at apply; the handle then watches the selector for processes that
// were not there before (restarts) and, with interval_ms, kills those too.
class KillHandle final : public FaultHandle {
 public:
  KillHandle(std::string fault_id, v1::ProcessFault fault, SelectionScope scope,
             std::set<ProcessKey> known, uint64_t matched, uint64_t signalled, milliseconds poll,
             std::shared_ptr<host::HostCallPool> proc_pool, milliseconds scan_deadline)
      : fault_id_(std::move(fault_id)),
        fault_(std::move(fault)),
        scope_(std::move(scope)),
        proc_pool_(std::move(proc_pool)),
        scan_deadline_(scan_deadline),
        known_(std::move(known)),
        poll_(poll),
        matched_(matched),
        signalled_(signalled) {
    watcher_ = std::thread([this] { Watch(); });
  }

  ~KillHandle() override { Stop(); }

  Status Revert() override {
    Stop();
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    return {{"processes_matched", matched_.load()},
            {"processes_signalled", signalled_.load()},
            {"restarts_observed", restarts_.load()}};
  }

 private:
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watcher_.joinable() && watcher_.get_id() != std::this_thread::get_id()) watcher_.join();
  }

  void Watch() {
    const int signal = fault_.signal().empty() ? SIGKILL : *SignalNumber(fault_.signal());
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, poll_, [this] { return stop_; })) {
      lock.unlock();
      // Bounded: Revert joins this thread, so a /proc read stuck in the kernel must not hold it.
      Result<std::vector<ProcessInfo>> now =
          SelectProcessesWithin(fault_, scope_, /*strict=*/false, *proc_pool_, scan_deadline_);
      if (now.ok()) {
        for (const ProcessInfo& p : *now) {
          if (!known_.insert({p.pid, p.start_time}).second) continue;
          ++restarts_;
          spdlog::info("process fault {}: restart observed: pid {} ({}) matches {}", fault_id_,
                       p.pid, p.comm, DescribeSelector(fault_));
          if (fault_.interval_ms() == 0) continue;
          if (Status s = SignalExactly(p.pid, p.start_time, signal); s.ok()) {
            ++signalled_;
            spdlog::info("process fault {}: sent {} to restarted pid {}", fault_id_,
                         strsignal(signal), p.pid);
          }
        }
      }
      lock.lock();
    }
  }

  const std::string fault_id_;
  const v1::ProcessFault fault_;
  const SelectionScope scope_;
  const std::shared_ptr<host::HostCallPool> proc_pool_;
  const milliseconds scan_deadline_;
  std::set<ProcessKey> known_;  // only the watcher thread touches it after construction
  const milliseconds poll_;
  std::atomic<uint64_t> matched_;
  std::atomic<uint64_t> signalled_;
  std::atomic<uint64_t> restarts_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread watcher_;
};

// PAUSE: holds the record of what was stopped; revert continues exactly that.
class PauseHandle final : public FaultHandle {
 public:
  PauseHandle(std::string fault_id, std::shared_ptr<PauseRecordStore> records, PauseRecord record,
              std::unique_ptr<host::DeathGuard> guard, uint64_t matched, uint64_t signalled,
              uint64_t paused)
      : fault_id_(std::move(fault_id)),
        records_(std::move(records)),
        record_(std::move(record)),
        guard_(std::move(guard)),
        matched_(matched),
        signalled_(signalled),
        paused_(paused) {}

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    uint64_t continued = 0;
    Status s = ResumePaused(record_, &continued);
    continued_ += continued;
    if (!s.ok()) return s;
    if (Status r = records_->Remove(fault_id_); !r.ok()) return r;
    if (guard_) guard_->Release();
    reverted_ = true;
    spdlog::info("process fault {}: {} process(es) continued", fault_id_, continued_.load());
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    return {{"processes_matched", matched_},
            {"processes_signalled", signalled_},
            {"processes_paused", paused_},
            {"processes_continued", continued_.load()},
            {"cgroup_frozen", record_.frozen_cgroup_dir.empty() ? 0u : 1u},
            {"restarts_observed", 0}};
  }

 private:
  const std::string fault_id_;
  std::shared_ptr<PauseRecordStore> records_;
  const PauseRecord record_;
  const std::unique_ptr<host::DeathGuard> guard_;  // continues them if the agent dies
  const uint64_t matched_;
  const uint64_t signalled_;
  const uint64_t paused_;
  std::atomic<uint64_t> continued_{0};
  std::mutex mu_;
  bool reverted_ = false;  // guarded by mu_
};

SelectionScope WithProtectedNames(SelectionScope scope, const std::vector<std::string>& names) {
  scope.protected_names.insert(scope.protected_names.end(), names.begin(), names.end());
  return scope;
}

}  // namespace

ProcessBackend::ProcessBackend(ProcessBackendOptions options)
    : options_(std::move(options)),
      scope_(WithProtectedNames(options_.scope ? *options_.scope : ScopeForThisAgent(),
                                options_.protected_names)),
      records_(std::make_shared<PauseRecordStore>(options_.record_dir)),
      proc_pool_(options_.proc_pool
                     ? options_.proc_pool
                     : std::make_shared<host::HostCallPool>(
                           host::HostCallPoolOptions{.name = "/proc", .max_workers = 4})) {}

std::string ProcessBackend::CgroupRoot() const {
  if (!options_.cgroup_root.empty()) return options_.cgroup_root;
  // Looked up at each use: another backend may mount cgroup2 in the agent's own mount
  // namespace after start (the DNS backend does, for scoped faults in the sandbox).
  for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (IsCgroup2(dir)) return dir;
  }
  return "";
}

Status ProcessBackend::DetectCapability() {
  if (!ReadProcess(static_cast<int>(::getpid())).ok()) {
    return FailedPrecondition("process: /proc is not readable");
  }
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t effective = 0;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      effective = std::stoull(line.substr(7), nullptr, 16);
      break;
    }
  }
  if ((effective & (uint64_t{1} << kCapKill)) == 0) {
    return FailedPrecondition("process: the agent lacks CAP_KILL");
  }
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (fd < 0) return FailedPrecondition("process: pidfd_open is not available (Linux < 5.3)");
  ::close(fd);
  if (options_.record_dir.empty()) {
    return FailedPrecondition("process: no directory for pause records is configured");
  }
  spdlog::info("process: scope {}, cgroup v2 freezer {}",
               scope_.net_namespace ? "this network namespace" : "the whole host",
               CgroupRoot().empty() ? "unavailable (SIGSTOP only)" : "at " + CgroupRoot());
  return Status::Ok();
}

Status ProcessBackend::Validate(const v1::FaultSpec& spec) const {
  if (!spec.has_process()) return InvalidArgument("process: the spec has no process section");
  return faultspec::ValidateFaultSpec(spec);
}

Result<std::unique_ptr<FaultHandle>> ProcessBackend::Apply(const std::string& fault_id,
                                                           const v1::FaultSpec& spec) {
  if (Status s = Validate(spec); !s.ok()) return s;
  if (!IsValidFaultId(fault_id)) return InvalidArgument("process: invalid fault id");
  if (spec.process().action() == v1::ProcessFault::KILL) return ApplyKill(fault_id, spec.process());
  return ApplyPause(fault_id, spec.process());
}

Result<std::unique_ptr<FaultHandle>> ProcessBackend::ApplyKill(const std::string& fault_id,
                                                               const v1::ProcessFault& fault) {
  Result<std::vector<ProcessInfo>> matching = SelectProcessesWithin(
      fault, scope_, /*strict=*/true, *proc_pool_, options_.proc_scan_deadline);
  if (!matching.ok()) return matching.status();
  if (matching->empty()) {
    return FailedPrecondition("process: no process matches " + DescribeSelector(fault));
  }
  std::set<ProcessKey> known;
  for (const ProcessInfo& p : *matching) known.insert({p.pid, p.start_time});
  const int signal = fault.signal().empty() ? SIGKILL : *SignalNumber(fault.signal());
  std::vector<ProcessInfo> chosen = ChooseSubset(*matching, fault);
  uint64_t signalled = 0;
  std::string failures;
  for (const ProcessInfo& p : chosen) {
    Status s = SignalExactly(p.pid, p.start_time, signal);
    if (s.ok()) {
      ++signalled;
    } else if (s.code() != StatusCode::kNotFound) {
      failures += (failures.empty() ? "" : "; ") + s.message();
    }
  }
  if (signalled == 0) {
    return FailedPrecondition("process: no process matching " + DescribeSelector(fault) +
                              " could be signalled" + (failures.empty() ? "" : ": " + failures));
  }
  spdlog::info("process fault {}: sent {} to {} of {} process(es) matching {}: pids {}", fault_id,
               strsignal(signal), signalled, matching->size(), DescribeSelector(fault),
               Pids(chosen));
  const milliseconds poll =
      fault.interval_ms() != 0 ? milliseconds(fault.interval_ms()) : options_.observe_interval;
  return std::unique_ptr<FaultHandle>(
      std::make_unique<KillHandle>(fault_id, fault, scope_, std::move(known), matching->size(),
                                   signalled, poll, proc_pool_, options_.proc_scan_deadline));
}

std::string ProcessBackend::FreezableCgroup(const v1::ProcessFault& fault,
                                            size_t eligible_matches) const {
  // The freezer stops a whole subtree, so it is used only when the fault selects all of it and
  // every process in it is one the agent may pause.
  if (fault.selector_case() != v1::ProcessFault::kCgroup || fault.count() != 0 ||
      fault.percent() != 0) {
    return "";
  }
  const std::string root = CgroupRoot();
  if (root.empty()) return "";
  const std::string cgroup = NormalizedCgroup(fault.cgroup());
  const std::string dir = root + "/" + cgroup;
  auto freeze = ReadFirstLine(dir + "/cgroup.freeze");
  if (!freeze || *freeze != "0") return "";  // no freezer, or already frozen by someone else
  Result<std::vector<ProcessInfo>> in_cgroup =
      ProcessesInCgroupWithin(cgroup, *proc_pool_, options_.proc_scan_deadline);
  if (!in_cgroup.ok() || in_cgroup->size() != eligible_matches) return "";
  return dir;
}

Result<std::unique_ptr<FaultHandle>> ProcessBackend::ApplyPause(const std::string& fault_id,
                                                                const v1::ProcessFault& fault) {
  Result<std::vector<ProcessInfo>> matching = SelectProcessesWithin(
      fault, scope_, /*strict=*/true, *proc_pool_, options_.proc_scan_deadline);
  if (!matching.ok()) return matching.status();
  if (matching->empty()) {
    return FailedPrecondition("process: no process matches " + DescribeSelector(fault));
  }
  std::vector<ProcessInfo> chosen = ChooseSubset(*matching, fault);
  PauseRecord record;
  record.frozen_cgroup_dir = FreezableCgroup(fault, matching->size());
  for (const ProcessInfo& p : chosen) record.processes.push_back({p.pid, p.start_time});
  // Durable before the first process stops: a crash from here on is reverted from the record.
  if (Status s = records_->Write(fault_id, record); !s.ok()) return s;
  // SIGSTOP has no timeout: a guard continues them if the agent dies. Up before the first stop.
  std::unique_ptr<host::DeathGuard> guard;
  if (options_.guard_pauses) {
    auto spawned = host::DeathGuard::Spawn({"pause", options_.record_dir, fault_id});
    if (!spawned.ok()) {
      (void)records_->Remove(fault_id);
      return Status(spawned.status().code(), "process: " + spawned.status().message());
    }
    guard = std::move(*spawned);
  }

  auto undo = [&](Status error) -> Status {
    uint64_t continued = 0;
    if (Status s = ResumePaused(record, &continued); !s.ok()) {
      spdlog::error("process fault {}: undoing a failed pause: {}", fault_id, s.ToString());
      return error;  // the record stays, so a revert after restart tries again
    }
    if (Status s = records_->Remove(fault_id); !s.ok()) spdlog::error("{}", s.ToString());
    return error;
  };

  uint64_t signalled = 0;
  uint64_t paused = 0;
  if (!record.frozen_cgroup_dir.empty()) {
    if (Status s = WriteControlFile(record.frozen_cgroup_dir + "/cgroup.freeze", "1"); !s.ok()) {
      return undo(s);
    }
    signalled = chosen.size();
    const auto deadline = std::chrono::steady_clock::now() + kAwaitStopped;
    while (!CgroupFrozen(record.frozen_cgroup_dir) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(kAwaitPoll);
    }
    if (CgroupFrozen(record.frozen_cgroup_dir)) paused = chosen.size();
  } else {
    std::string failures;
    for (const ProcessInfo& p : chosen) {
      Status s = SignalExactly(p.pid, p.start_time, SIGSTOP);
      if (s.ok()) {
        ++signalled;
      } else if (s.code() != StatusCode::kNotFound) {
        failures += (failures.empty() ? "" : "; ") + s.message();
      }
    }
    if (!failures.empty()) return undo(Internal("process: SIGSTOP failed: " + failures));
    if (signalled == 0) {
      return undo(FailedPrecondition("process: every process matching " + DescribeSelector(fault) +
                                     " exited before it was paused"));
    }
    // SIGSTOP is delivered asynchronously; the evidence counts what is seen stopped.
    const auto deadline = std::chrono::steady_clock::now() + kAwaitStopped;
    while (true) {
      paused = 0;
      for (const ProcessInfo& p : chosen) {
        Result<ProcessInfo> now = ReadProcess(p.pid);
        if (now.ok() && now->start_time == p.start_time &&
            (now->state == 'T' || now->state == 't')) {
          ++paused;
        }
      }
      if (paused >= signalled || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(kAwaitPoll);
    }
  }
  spdlog::info(
      "process fault {}: paused {} of {} process(es) matching {} ({}): pids {}", fault_id, paused,
      matching->size(), DescribeSelector(fault),
      record.frozen_cgroup_dir.empty() ? "SIGSTOP" : "cgroup.freeze " + record.frozen_cgroup_dir,
      Pids(chosen));
  return std::unique_ptr<FaultHandle>(
      std::make_unique<PauseHandle>(fault_id, records_, std::move(record), std::move(guard),
                                    matching->size(), signalled, paused));
}

Status ProcessBackend::RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) {
  if (!IsValidFaultId(fault_id)) return InvalidArgument("process: invalid fault id");
  // Only a pause leaves something to undo; its record (not the spec) says exactly what.
  Result<std::optional<PauseRecord>> record = records_->Read(fault_id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return Status::Ok();
  uint64_t continued = 0;
  if (Status s = ResumePaused(**record, &continued); !s.ok()) return s;
  spdlog::info("process fault {} (orphaned {}): {} process(es) continued", fault_id,
               spec.has_process() ? DescribeSelector(spec.process()) : "pause", continued);
  return records_->Remove(fault_id);
}

}  // namespace faultline::agent::process
