#pragma once
// PauseRecord: the durable list of what a PAUSE fault stopped, so that a revert after an agent
// crash (RevertOrphan knows only the spec) continues exactly those processes. One file per fault,
// <dir>/<fault_id>.paused, written and fsynced (then the directory) *before* the first SIGSTOP or
// freeze, removed after the revert. Text, one item per line:
//   faultline-process-pause v1
//   frozen <cgroup-v2-directory>     (only when the cgroup freezer was used)
//   pid <pid> <start-time>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace faultline::agent::process {

struct PausedProcess {
  int pid = 0;
  uint64_t start_time = 0;
  bool operator==(const PausedProcess&) const = default;
};

struct PauseRecord {
  std::string frozen_cgroup_dir;  // absolute cgroup directory written to; empty = SIGSTOP mode
  std::vector<PausedProcess> processes;
};

// Serialises / parses the record text above. Parse: INVALID_ARGUMENT when malformed.
std::string FormatPauseRecord(const PauseRecord& record);
Result<PauseRecord> ParsePauseRecord(const std::string& text);

class PauseRecordStore {
 public:
  // `dir` is created (mode 0700) on first Write. Precondition: fault ids are valid fault ids.
  explicit PauseRecordStore(std::string dir) : dir_(std::move(dir)) {}

  // Durably writes (temp file, fsync, rename, fsync dir) the record of `fault_id`.
  // INTERNAL on any I/O error.
  Status Write(const std::string& fault_id, const PauseRecord& record) const;
  // The record of `fault_id`; nullopt when there is none. INTERNAL when unreadable or corrupt.
  Result<std::optional<PauseRecord>> Read(const std::string& fault_id) const;
  // Deletes the record. Idempotent: OK when there is none. INTERNAL on an I/O error.
  Status Remove(const std::string& fault_id) const;

  const std::string& dir() const { return dir_; }

 private:
  std::string PathOf(const std::string& fault_id) const;
  Status SyncDir() const;
  std::string dir_;
};

}  // namespace faultline::agent::process
