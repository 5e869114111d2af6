#pragma once
// AuditLog: the one audit function of the controller. Every action a principal takes or is
// refused (halt, resume, run submit, token create/revoke, console login/logout, annotate,
// schedules, policy refusals) is recorded with identity, team, role, source and peer:
//  - at once as one line in the controller's log (spdlog, "audit: at=... action=... outcome=...
//    identity="..." role=... team=... source=... peer=... detail="..."", quotes and control
//    characters in values escaped so a crafted name cannot forge fields);
//  - in the store's faultline_audit table (run_store.h), so the console can show it, written by
//    the log's own thread: Record() never blocks on the database.
//
// Threading: Record() is thread-safe and never blocks on I/O besides the log line. At most
// `max_queued` records wait for the store; beyond that a record is logged (with a warning) but
// not stored. Destruction writes what is queued.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "controller/access/principal.h"
#include "controller/store/run_store.h"

namespace faultline::access {

class AuditLog {
 public:
  // `store` may be null (log only); it and `clock` must outlive the log.
  explicit AuditLog(store::RunStore* store, Clock* clock = &SystemClock::Instance(),
                    size_t max_queued = 4096);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Records `action` by `who` with `outcome` (OK, or the refusal/error it got) and a detail
  // ("reason=...", "run=abc", "token=0123..."). Never fails.
  void Record(std::string_view action, const Principal& who, const Status& outcome,
              std::string_view detail = {});
  // Blocks until every record queued so far is in the store (or failed to be). For tests/tools.
  void Flush();

  // The log line Record writes for this record (without spdlog's prefix). Pure.
  static std::string FormatLine(const store::AuditRecord& record);

 private:
  void WriterLoop();

  store::RunStore* const store_;
  Clock* const clock_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<store::AuditRecord> queue_;  // guarded by mu_
  size_t in_flight_ = 0;                  // guarded by mu_
  bool stopping_ = false;                 // guarded by mu_
  std::thread writer_;
};

}  // namespace faultline::access
