#pragma once
// Journal: the durable record of active faults, one file per fault (<dir>/<fault_id>.pb holding
// the ApplyFaultRequest). A fault is recorded before its backend applies it and removed after it
// is reverted, so after a crash the agent knows exactly what to revert and with which parameters.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/host/host_call.h"
#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

// A journal file that could not be used.
struct JournalProblem {
  std::string path;
  std::string reason;
};

struct JournalContents {
  std::vector<v1::ApplyFaultRequest> entries;  // sorted by fault id
  std::vector<JournalProblem> problems;        // unreadable or corrupt files, left in place
};

// How long one journal write, fsync or unlink may take before its caller gets DEADLINE_EXCEEDED
// (a disk that stopped answering must not hold an apply's error, or a revert, for ever).
inline constexpr std::chrono::milliseconds kJournalCallDeadline{5000};

struct JournalOptions {
  // The longest Record, Remove and Quarantine wait for the file system (tests shorten it).
  std::chrono::milliseconds deadline = kJournalCallDeadline;
  // Where the file system calls run; null = a pool of the journal's own (4 workers).
  std::shared_ptr<host::HostCallPool> pool;
};

// Record, Remove and Quarantine run their file system calls on a HostCallPool worker and return
// at most options.deadline later: DEADLINE_EXCEEDED when the disk did not answer in time (the
// call goes on in the background and may still take effect: a late record is reverted as an
// orphan by the next start, which is idempotent), RESOURCE_EXHAUSTED at once when every worker
// is held by an earlier stuck call.
class Journal {
 public:
  // Opens (creating it and its parents, mode 0700, when missing) the journal directory.
  // INTERNAL when it cannot be created or is not a directory.
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir, JournalOptions options = {});

  // The journal directory, normalised (no trailing slash).
  const std::string& dir() const { return dir_; }

  // Durably writes the request to <dir>/<fault_id>.pb: a temporary file is written and fsynced,
  // renamed over the final name, then the directory is fsynced. Replaces an existing record of
  // the same id. Precondition: request.fault_id() is a valid fault id (INVALID_ARGUMENT
  // otherwise, since it becomes a file name). INTERNAL on any I/O error (nothing half-written is
  // left under the final name). Thread-safe for distinct ids.
  Status Record(const v1::ApplyFaultRequest& request);

  // Deletes the record of `fault_id` and fsyncs the directory. Idempotent: OK when there is no
  // record. INVALID_ARGUMENT for an invalid id, INTERNAL on an I/O error.
  Status Remove(const std::string& fault_id);

  // Reads every record. Files that cannot be read or parsed, or whose content names another
  // fault id than the file name, are reported in `problems` (never fatal). Leftover temporary
  // files from an interrupted Record are ignored.
  JournalContents LoadAll() const;

  // Renames a problem file to <path>.corrupt so later LoadAll calls skip it while an operator
  // can still inspect it. `path` must be inside the journal directory. Idempotent.
  Status Quarantine(const std::string& path);

 private:
  Journal(std::string dir, JournalOptions options);
  std::string PathOf(const std::string& fault_id) const;

  std::string dir_;
  std::chrono::milliseconds deadline_;
  std::shared_ptr<host::HostCallPool> pool_;
};

}  // namespace faultline::agent
