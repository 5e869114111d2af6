#pragma once
// RunStore: the controller's durable state — run history (spec, JSON report, verdict,
// annotations), schedules, schedule firings (including missed and skipped due times) and the
// leader lease that makes one controller of several fire the schedules.
//
// Two implementations pass one test suite (tests/unit/controller/store/):
//   SqliteRunStore   — one embedded file (the default: direct-mode `faultline run` history);
//   PostgresRunStore — a team's shared history; several controllers on one database.
// Open either with OpenRunStore(url).
//
// Every method is thread-safe (an implementation serialises on its connection), returns a
// Status/Result and never throws. Times are Unix milliseconds (wall clock); "now" comes from the
// Clock the store was opened with, so tests drive lease expiry with a FakeClock.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace faultline::store {

// ---- runs -------------------------------------------------------------------------------------

enum class RunState { kRunning, kFinished, kInterrupted };
const char* RunStateName(RunState s);  // "running", "finished", "interrupted"
Result<RunState> ParseRunState(std::string_view s);

struct RunRecord {
  std::string id;          // the engine's run id ([a-z0-9]{1,32})
  std::string experiment;  // metadata.name
  std::string spec_yaml;   // the experiment file's text, as run
  RunState state = RunState::kRunning;
  std::string verdict;  // PASS|FAIL|ABORTED|ERROR; empty while running or when interrupted
  int64_t started_unix_ms = 0;
  int64_t ended_unix_ms = 0;  // 0 while running
  // The full JSON report document (DESIGN.md: timeline, objectives, faults with evidence, probes
  // with samples). Empty while running. Stored verbatim; the store does not parse it.
  std::string report_json;
  std::string source;  // "cli", "controller" or "schedule:<name>"
  // Who executes the run: a controller id for controller/schedule runs, "cli:<host>:<pid>" for
  // direct mode. MarkInterrupted() selects on it.
  std::string owner;
};

// A human event on a run ("paged the on-call", "failover started by hand").
struct Annotation {
  int64_t id = 0;  // assigned by the store
  std::string run_id;
  int64_t at_unix_ms = 0;
  std::string author;
  std::string text;
};

// What `faultline report RUN` and the report renderers need.
struct StoredRun {
  RunRecord run;
  std::vector<Annotation> annotations;  // oldest first
};

struct RunFilter {
  int limit = 20;                 // newest first; <= 0 means no limit
  std::string experiment;         // empty: any
  std::string source;             // empty: any
  std::optional<RunState> state;  // nullopt: any
  bool with_report = false;       // false leaves report_json and spec_yaml empty (cheap listing)
};

// ---- schedules --------------------------------------------------------------------------------

enum class ConcurrencyPolicy { kForbid, kAllow };
const char* ConcurrencyPolicyName(ConcurrencyPolicy p);  // "forbid", "allow"
Result<ConcurrencyPolicy> ParseConcurrencyPolicy(std::string_view s);

// A scheduled game day. The store keeps the fields as given; controller/schedule/ validates
// them (cron syntax, time zone, window, dates) before they reach the store.
struct Schedule {
  std::string name;        // [a-z0-9][a-z0-9-]{0,62}
  std::string spec_yaml;   // the experiment to run (file text)
  std::string cron;        // 5 fields or @daily/@hourly/...
  std::string tz = "UTC";  // IANA time zone the cron expression, window and dates are read in
  ConcurrencyPolicy concurrency = ConcurrencyPolicy::kForbid;
  std::string window;  // "HH:MM-HH:MM" local time (may wrap midnight); empty: any time
  std::vector<std::string> blackout_dates;  // "YYYY-MM-DD" local dates on which it never starts
  bool paused = false;
  int64_t created_unix_ms = 0;  // set by AddSchedule when 0; due times before it are not owed
};

// One due time of a schedule and what became of it. (schedule, due_unix_ms) is unique: the
// store refuses a second record, which is what makes a due time fire once across controllers.
struct Firing {
  std::string schedule;
  int64_t due_unix_ms = 0;
  int64_t recorded_unix_ms = 0;  // set by RecordFiring when 0
  // "started", "missed:<reason>" (the due time passed with no controller deciding in time, e.g.
  // "missed:controller-down") or "skipped:<reason>" (decided not to start: "skipped:window",
  // "skipped:blackout", "skipped:paused", "skipped:concurrency", "skipped:halted"), or
  // "failed:<why>" when the run could not be started.
  std::string outcome;
  std::string run_id;  // when started
  std::string holder;  // the controller that recorded it
};

// ---- the leader lease -------------------------------------------------------------------------

struct Leadership {
  std::string holder;
  int64_t expires_unix_ms = 0;
};

// ---- access tokens and the audit trail ----------------------------------------------------------

// A console/API token (`faultline token create`). The secret itself is never stored: only the
// hex SHA-256 of it (controller/access/token_authority.h makes and checks tokens).
struct TokenRecord {
  std::string id;           // [a-z0-9]{16}, public (shown by `token list`, part of the token)
  std::string name;         // free text label, may be empty
  std::string role;         // "viewer" | "operator"
  std::string team;         // may be empty
  std::string secret_hash;  // hex SHA-256 of the token's secret part
  int64_t created_unix_ms = 0;
  int64_t expires_unix_ms = 0;  // 0: never
  int64_t revoked_unix_ms = 0;  // 0: not revoked
  std::string created_by;       // identity of the creator
};

// One audited action (controller/access/audit.h).
struct AuditRecord {
  int64_t id = 0;  // assigned by the store
  int64_t at_unix_ms = 0;
  std::string action;   // "halt", "resume", "run.submit", "token.create", "console.login", ...
  std::string outcome;  // "OK" or a status code name ("PERMISSION_DENIED")
  std::string identity;
  std::string role;
  std::string team;
  std::string source;  // "certificate" | "token" | "plaintext" | "internal"
  std::string peer;    // transport address
  std::string detail;  // what, and why when refused
};

// ---- the store --------------------------------------------------------------------------------

class RunStore {
 public:
  virtual ~RunStore() = default;

  // Where the store lives, for messages ("sqlite:///var/lib/faultline/history.db",
  // "postgresql://host/db" — never a password).
  virtual std::string Describe() const = 0;

  // Runs.
  // Inserts a run (any state: direct mode inserts the finished run once). ALREADY_EXISTS when the
  // id is taken; INVALID_ARGUMENT when id or experiment is empty.
  virtual Status CreateRun(const RunRecord& run) = 0;
  // running → finished with verdict, end time and report. NOT_FOUND; FAILED_PRECONDITION when the
  // run is not running (finished twice, or already marked interrupted — its report is then
  // still stored, so a controller that was wrongly presumed dead loses nothing).
  virtual Status FinishRun(const std::string& id, const std::string& verdict, int64_t ended_unix_ms,
                           const std::string& report_json) = 0;
  // Marks every run still `running` whose owner is `owner` as interrupted (ended now). For a
  // controller that restarts after a crash, or a leader sweeping a dead peer's runs. Idempotent;
  // returns how many runs changed.
  virtual Result<int> MarkInterrupted(const std::string& owner) = 0;
  // Marks interrupted every run still `running` that was not started by the CLI and whose owner
  // holds no unexpired lease named PresenceLock(owner): its controller died (or stalled past its
  // lease) mid-run. Called by the leading controller each tick. Returns how many runs changed.
  virtual Result<int> MarkOrphanedRunsInterrupted() = 0;
  // The run and its annotations. `id` may be a unique prefix of at least 4 characters.
  // NOT_FOUND; INVALID_ARGUMENT when a prefix matches several runs.
  virtual Result<StoredRun> GetRun(const std::string& id) = 0;
  // Newest first (by start time).
  virtual Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) = 0;
  // Adds an annotation to a run (at_unix_ms 0 means now). Returns it with its id. NOT_FOUND
  // when the run does not exist; INVALID_ARGUMENT for empty text.
  virtual Result<Annotation> AddAnnotation(const Annotation& annotation) = 0;

  // Schedules.
  // ALREADY_EXISTS when the name is taken; INVALID_ARGUMENT for an empty name, spec or cron.
  virtual Status AddSchedule(const Schedule& schedule) = 0;
  // NOT_FOUND when absent. Removing a schedule keeps its firings (history).
  virtual Status RemoveSchedule(const std::string& name) = 0;
  // Idempotent. NOT_FOUND when absent.
  virtual Status SetSchedulePaused(const std::string& name, bool paused) = 0;
  virtual Result<Schedule> GetSchedule(const std::string& name) = 0;
  virtual Result<std::vector<Schedule>> ListSchedules() = 0;  // by name

  // Firings.
  // ALREADY_EXISTS when this (schedule, due time) is already recorded — by this or another
  // controller: the caller must then not start a run for it.
  virtual Status RecordFiring(const Firing& firing) = 0;
  // Updates a recorded firing's outcome and run id: a firing is claimed ("started") before its
  // run starts; then its run id is filled in, or the outcome becomes "failed:<why>". NOT_FOUND.
  virtual Status UpdateFiring(const std::string& schedule, int64_t due_unix_ms,
                              const std::string& outcome, const std::string& run_id) = 0;
  // Newest due time first; empty `schedule` means every schedule.
  virtual Result<std::vector<Firing>> ListFirings(const std::string& schedule, int limit) = 0;
  // The latest recorded due time of a schedule, nullopt when none.
  virtual Result<std::optional<int64_t>> LastFiringDue(const std::string& schedule) = 0;

  // Tokens. CreateToken: ALREADY_EXISTS for a taken id; INVALID_ARGUMENT without id, role or
  // hash. GetToken: NOT_FOUND. ListTokens: every token (revoked and expired too), oldest first.
  // RevokeToken: sets revoked_unix_ms (now) once; idempotent (a revoked token stays revoked
  // with its first revocation time); NOT_FOUND for an unknown id.
  virtual Status CreateToken(const TokenRecord& token) = 0;
  virtual Result<TokenRecord> GetToken(const std::string& id) = 0;
  virtual Result<std::vector<TokenRecord>> ListTokens() = 0;
  virtual Status RevokeToken(const std::string& id) = 0;

  // The audit trail. AppendAudit: at_unix_ms 0 means now; INVALID_ARGUMENT without an action.
  // ListAudit: newest first, at most `limit` (<= 0: no limit).
  virtual Status AppendAudit(const AuditRecord& record) = 0;
  virtual Result<std::vector<AuditRecord>> ListAudit(int limit) = 0;

  // The leader lease (one per store, named by `lock`, e.g. "scheduler").
  // Takes the lease when it is free, expired, or already `holder`'s (then it is renewed);
  // returns whether `holder` now holds it, valid until now + ttl. Atomic across controllers.
  virtual Result<bool> TryAcquireLeadership(const std::string& lock, const std::string& holder,
                                            std::chrono::milliseconds ttl) = 0;
  // Extends a lease `holder` still holds. FAILED_PRECONDITION when it expired and someone else
  // took it, or it was never held: the caller must stop acting as leader.
  virtual Status RenewLeadership(const std::string& lock, const std::string& holder,
                                 std::chrono::milliseconds ttl) = 0;
  // Gives the lease up (idempotent; a lease held by someone else is left alone).
  virtual Status ReleaseLeadership(const std::string& lock, const std::string& holder) = 0;
  // The current unexpired holder, nullopt when none.
  virtual Result<std::optional<Leadership>> CurrentLeader(const std::string& lock) = 0;
};

// The lease a live controller renews so that its running runs are not taken for orphans.
std::string PresenceLock(const std::string& owner);

// Opens (creating or migrating the schema as needed) the store named by `url`:
//   "sqlite:///abs/path.db", "sqlite://rel/path.db" or a plain path → SqliteRunStore (parent
//   directory created);
//   "postgresql://..." or "postgres://..." (libpq URI: user, password, host, port, dbname,
//   ?host=/socket/dir) → PostgresRunStore.
// `clock` must outlive the store. INVALID_ARGUMENT for an unknown scheme; UNAVAILABLE when the
// database cannot be opened or reached; FAILED_PRECONDITION when its schema is newer than this
// binary knows.
Result<std::unique_ptr<RunStore>> OpenRunStore(const std::string& url,
                                               Clock* clock = &SystemClock::Instance());

// The direct-mode history store: $FAULTLINE_HISTORY, else sqlite:///var/lib/faultline/history.db.
std::string DefaultHistoryUrl();

// `url` fit for a log line or an error message: the password of a URL's user info
// (scheme://user:PASSWORD@host) and the value of any password= parameter (a libpq URI's
// ?password=..., a key=value conninfo) become "****". Everything else is kept, so the message
// still says which database. Pure; total (text that is no URL comes back unchanged).
std::string RedactUrl(const std::string& url);

}  // namespace faultline::store
