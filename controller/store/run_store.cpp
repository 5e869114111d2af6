// SqlRunStore: the RunStore logic once, over SqlConnection (SQLite or PostgreSQL); OpenRunStore.
//
// The leader lock is a lease row (faultline_leases: name, holder, expires_unix_ms) taken with one
// atomic upsert, in both databases, rather than pg_try_advisory_lock:
//  - an advisory lock lives as long as the session, so a controller that hangs (but keeps its
//    TCP session open) would keep leadership for ever; a lease lapses after its TTL unless the
//    holder renews it, which it can only do while it is actually working;
//  - the lease survives a reconnect through a pooler (session-level advisory locks do not work
//    behind transaction pooling), and CurrentLeader() can say who leads, for `status` output;
//  - one mechanism in both stores, so the shared test suite covers it.
// Expiry is judged by the caller's Clock (controllers are expected to be NTP-synchronised; the
// TTL must exceed their skew). Leadership alone is not what guarantees once-only firing: the
// primary key on (schedule, due time) of faultline_firings does, so even two controllers that
// both believe they lead (skew, a paused process waking up) record one firing and start one run.
#include "controller/store/run_store.h"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "common/ids.h"
#include "controller/store/sql_connection.h"

namespace faultline::store {

const char* RunStateName(RunState s) {
  switch (s) {
    case RunState::kRunning:
      return "running";
    case RunState::kFinished:
      return "finished";
    case RunState::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

Result<RunState> ParseRunState(std::string_view s) {
  if (s == "running") return RunState::kRunning;
  if (s == "finished") return RunState::kFinished;
  if (s == "interrupted") return RunState::kInterrupted;
  return InvalidArgument("unknown run state '" + std::string(s) +
                         "' (expected running, finished or interrupted)");
}

const char* ConcurrencyPolicyName(ConcurrencyPolicy p) {
  return p == ConcurrencyPolicy::kAllow ? "allow" : "forbid";
}

Result<ConcurrencyPolicy> ParseConcurrencyPolicy(std::string_view s) {
  if (s == "forbid") return ConcurrencyPolicy::kForbid;
  if (s == "allow") return ConcurrencyPolicy::kAllow;
  return InvalidArgument("unknown concurrency policy '" + std::string(s) +
                         "' (expected forbid or allow)");
}

std::string DefaultHistoryUrl() {
  const char* env = std::getenv("FAULTLINE_HISTORY");
  if (env != nullptr && *env != '\0') return env;
  return "sqlite:///var/lib/faultline/history.db";
}

std::string PresenceLock(const std::string& owner) { return "presence:" + owner; }

namespace {

// Schema migrations, applied in order; the index + 1 is the version. Never edit a released
// entry: append a new one. "{id}" is the dialect's auto-increment key.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE faultline_runs (
  id TEXT PRIMARY KEY,
  experiment TEXT NOT NULL,
  spec_yaml TEXT NOT NULL,
  state TEXT NOT NULL,
  verdict TEXT NOT NULL DEFAULT '',
  started_unix_ms BIGINT NOT NULL,
  ended_unix_ms BIGINT NOT NULL DEFAULT 0,
  report_json TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL,
  owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX faultline_runs_started ON faultline_runs (started_unix_ms);
CREATE INDEX faultline_runs_owner_state ON faultline_runs (owner, state);
CREATE TABLE faultline_annotations (
  id {id},
  run_id TEXT NOT NULL REFERENCES faultline_runs (id) ON DELETE CASCADE,
  at_unix_ms BIGINT NOT NULL,
  author TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX faultline_annotations_run ON faultline_annotations (run_id);
CREATE TABLE faultline_schedules (
  name TEXT PRIMARY KEY,
  spec_yaml TEXT NOT NULL,
  cron TEXT NOT NULL,
  tz TEXT NOT NULL,
  concurrency TEXT NOT NULL,
  run_window TEXT NOT NULL,
  blackout_dates TEXT NOT NULL,
  paused INTEGER NOT NULL,
  created_unix_ms BIGINT NOT NULL
);
CREATE TABLE faultline_firings (
  schedule TEXT NOT NULL,
  due_unix_ms BIGINT NOT NULL,
  recorded_unix_ms BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  run_id TEXT NOT NULL,
  holder TEXT NOT NULL,
  PRIMARY KEY (schedule, due_unix_ms)
);
CREATE TABLE faultline_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_unix_ms BIGINT NOT NULL
)
)sql",
    // 2: access tokens (hashed) and the audit trail (controller/access/).
    R"sql(
CREATE TABLE faultline_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  team TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_unix_ms BIGINT NOT NULL,
  expires_unix_ms BIGINT NOT NULL,
  revoked_unix_ms BIGINT NOT NULL,
  created_by TEXT NOT NULL
);
CREATE TABLE faultline_audit (
  id {id},
  at_unix_ms BIGINT NOT NULL,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  identity TEXT NOT NULL,
  role TEXT NOT NULL,
  team TEXT NOT NULL,
  source TEXT NOT NULL,
  peer TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX faultline_audit_at ON faultline_audit (at_unix_ms)
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Serialises migrations of concurrently starting controllers (pg_advisory_xact_lock key).
constexpr int64_t kMigrationLockKey = 0x66617531;  // "fau1"

int64_t ToInt(const std::optional<std::string>& s) {
  if (!s) return 0;
  int64_t v = 0;
  std::from_chars(s->data(), s->data() + s->size(), v);
  return v;
}

std::string ToText(const std::optional<std::string>& s) { return s.value_or(""); }

std::string JoinDates(const std::vector<std::string>& dates) {
  std::string out;
  for (const auto& d : dates) out += (out.empty() ? "" : ",") + d;
  return out;
}

std::vector<std::string> SplitDates(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

constexpr const char* kRunColumns =
    "id, experiment, spec_yaml, state, verdict, started_unix_ms, ended_unix_ms, report_json, "
    "source, owner";
constexpr const char* kRunColumnsNoReport =
    "id, experiment, '', state, verdict, started_unix_ms, ended_unix_ms, '', source, owner";
constexpr const char* kScheduleColumns =
    "name, spec_yaml, cron, tz, concurrency, run_window, blackout_dates, paused, created_unix_ms";
constexpr const char* kTokenColumns =
    "id, name, role, team, secret_hash, created_unix_ms, expires_unix_ms, revoked_unix_ms, "
    "created_by";
constexpr const char* kFiringColumns =
    "schedule, due_unix_ms, recorded_unix_ms, outcome, run_id, holder";

RunRecord RunFromRow(const std::vector<std::optional<std::string>>& r) {
  RunRecord run;
  run.id = ToText(r[0]);
  run.experiment = ToText(r[1]);
  run.spec_yaml = ToText(r[2]);
  auto state = ParseRunState(ToText(r[3]));
  run.state = state.ok() ? *state : RunState::kInterrupted;
  run.verdict = ToText(r[4]);
  run.started_unix_ms = ToInt(r[5]);
  run.ended_unix_ms = ToInt(r[6]);
  run.report_json = ToText(r[7]);
  run.source = ToText(r[8]);
  run.owner = ToText(r[9]);
  return run;
}

Schedule ScheduleFromRow(const std::vector<std::optional<std::string>>& r) {
  Schedule s;
  s.name = ToText(r[0]);
  s.spec_yaml = ToText(r[1]);
  s.cron = ToText(r[2]);
  s.tz = ToText(r[3]);
  auto policy = ParseConcurrencyPolicy(ToText(r[4]));
  s.concurrency = policy.ok() ? *policy : ConcurrencyPolicy::kForbid;
  s.window = ToText(r[5]);
  s.blackout_dates = SplitDates(ToText(r[6]));
  s.paused = ToInt(r[7]) != 0;
  s.created_unix_ms = ToInt(r[8]);
  return s;
}

Firing FiringFromRow(const std::vector<std::optional<std::string>>& r) {
  Firing f;
  f.schedule = ToText(r[0]);
  f.due_unix_ms = ToInt(r[1]);
  f.recorded_unix_ms = ToInt(r[2]);
  f.outcome = ToText(r[3]);
  f.run_id = ToText(r[4]);
  f.holder = ToText(r[5]);
  return f;
}

TokenRecord TokenFromRow(const std::vector<std::optional<std::string>>& r) {
  TokenRecord t;
  t.id = ToText(r[0]);
  t.name = ToText(r[1]);
  t.role = ToText(r[2]);
  t.team = ToText(r[3]);
  t.secret_hash = ToText(r[4]);
  t.created_unix_ms = ToInt(r[5]);
  t.expires_unix_ms = ToInt(r[6]);
  t.revoked_unix_ms = ToInt(r[7]);
  t.created_by = ToText(r[8]);
  return t;
}

class SqlRunStore final : public RunStore {
 public:
  SqlRunStore(std::unique_ptr<SqlConnection> conn, Clock* clock)
      : conn_(std::move(conn)), clock_(clock) {}

  // Brings the schema to kSchemaVersion. Idempotent; safe when several processes start at once.
  Status Migrate() {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction([&]() -> Status {
      if (conn_->IsPostgres()) {
        auto locked = conn_->Execute("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey});
        if (!locked.ok()) return locked.status();
      }
      if (auto s = conn_->ExecuteScript(
              "CREATE TABLE IF NOT EXISTS faultline_schema (version BIGINT NOT NULL)");
          !s.ok()) {
        return s;
      }
      auto v = conn_->Execute("SELECT MAX(version) FROM faultline_schema", {});
      if (!v.ok()) return v.status();
      int64_t version = v->rows.empty() ? 0 : ToInt(v->rows[0][0]);
      if (version > kSchemaVersion) {
        return FailedPrecondition("the history database " + conn_->Describe() +
                                  " has schema version " + std::to_string(version) +
                                  ", newer than this faultline knows (" +
                                  std::to_string(kSchemaVersion) + "): upgrade faultline");
      }
      for (int64_t i = version; i < kSchemaVersion; ++i) {
        std::string ddl = kMigrations[i];
        std::string id =
            conn_->IsPostgres() ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT";
        for (size_t at; (at = ddl.find("{id}")) != std::string::npos;) ddl.replace(at, 4, id);
        if (auto s = conn_->ExecuteScript(ddl); !s.ok()) return s;
        auto ins = conn_->Execute("INSERT INTO faultline_schema (version) VALUES ($1)", {i + 1});
        if (!ins.ok()) return ins.status();
      }
      return Status::Ok();
    });
  }

  std::string Describe() const override { return conn_->Describe(); }

  Status CreateRun(const RunRecord& run) override {
    if (run.id.empty() || run.experiment.empty()) {
      return InvalidArgument("a run needs an id and an experiment name");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        std::string("INSERT INTO faultline_runs (") + kRunColumns +
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        {run.id, run.experiment, run.spec_yaml, RunStateName(run.state), run.verdict,
         run.started_unix_ms, run.ended_unix_ms, run.report_json, run.source, run.owner});
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("run " + run.id + " is already recorded");
    }
    return r.status();
  }

  Status FinishRun(const std::string& id, const std::string& verdict, int64_t ended_unix_ms,
                   const std::string& report_json) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        "UPDATE faultline_runs SET state = 'finished', verdict = $2, ended_unix_ms = $3, "
        "report_json = $4 WHERE id = $1 AND state = 'running'",
        {id, verdict, ended_unix_ms, report_json});
    if (!r.ok()) return r.status();
    if (r->affected == 1) return Status::Ok();
    // Keep the report of a run already presumed interrupted: it is the best evidence there is.
    auto late = conn_->Execute(
        "UPDATE faultline_runs SET verdict = $2, report_json = $4, ended_unix_ms = $3 "
        "WHERE id = $1 AND state = 'interrupted'",
        {id, verdict, ended_unix_ms, report_json});
    if (!late.ok()) return late.status();
    if (late->affected == 1) {
      return FailedPrecondition("run " + id +
                                " was already marked interrupted; its report was stored anyway");
    }
    auto exists = conn_->Execute("SELECT state FROM faultline_runs WHERE id = $1", {id});
    if (!exists.ok()) return exists.status();
    if (exists->rows.empty()) return NotFound("no run " + id);
    return FailedPrecondition("run " + id + " is already " + ToText(exists->rows[0][0]));
  }

  Result<int> MarkInterrupted(const std::string& owner) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        "UPDATE faultline_runs SET state = 'interrupted', ended_unix_ms = $2 "
        "WHERE owner = $1 AND state = 'running'",
        {owner, clock_->WallUnixMs()});
    if (!r.ok()) return r.status();
    return static_cast<int>(r->affected);
  }

  Result<int> MarkOrphanedRunsInterrupted() override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        "UPDATE faultline_runs SET state = 'interrupted', ended_unix_ms = $1 "
        "WHERE state = 'running' AND source <> 'cli' AND NOT EXISTS (SELECT 1 FROM "
        "faultline_leases l WHERE l.name = 'presence:' || faultline_runs.owner "
        "AND l.expires_unix_ms > $1)",
        {clock_->WallUnixMs()});
    if (!r.ok()) return r.status();
    return static_cast<int>(r->affected);
  }

  Result<StoredRun> GetRun(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string select = std::string("SELECT ") + kRunColumns + " FROM faultline_runs ";
    auto r = conn_->Execute(select + "WHERE id = $1", {id});
    if (!r.ok()) return r.status();
    if (r->rows.empty() && id.size() >= 4 && IsValidRunId(id)) {
      // The alphabet check keeps LIKE's wildcards out of the prefix.
      r = conn_->Execute(select + "WHERE id LIKE $1 ORDER BY id LIMIT 2", {id + "%"});
      if (!r.ok()) return r.status();
      if (r->rows.size() > 1) {
        return InvalidArgument("run id prefix '" + id + "' is ambiguous (matches " +
                               ToText(r->rows[0][0]) + ", " + ToText(r->rows[1][0]) +
                               ", ...): give more characters");
      }
    }
    if (r->rows.empty()) return NotFound("no run " + id + " in " + conn_->Describe());
    StoredRun out;
    out.run = RunFromRow(r->rows[0]);
    auto a = conn_->Execute(
        "SELECT id, run_id, at_unix_ms, author, body FROM faultline_annotations "
        "WHERE run_id = $1 ORDER BY at_unix_ms, id",
        {out.run.id});
    if (!a.ok()) return a.status();
    for (const auto& row : a->rows) {
      out.annotations.push_back(
          {ToInt(row[0]), ToText(row[1]), ToInt(row[2]), ToText(row[3]), ToText(row[4])});
    }
    return out;
  }

  Result<std::vector<RunRecord>> ListRuns(const RunFilter& f) override {
    std::string sql = std::string("SELECT ") + (f.with_report ? kRunColumns : kRunColumnsNoReport) +
                      " FROM faultline_runs WHERE 1 = 1";
    std::vector<SqlValue> params;
    auto add = [&](const std::string& clause, SqlValue v) {
      params.push_back(std::move(v));
      sql += " AND " + clause + " = $" + std::to_string(params.size());
    };
    if (!f.experiment.empty()) add("experiment", f.experiment);
    if (!f.source.empty()) add("source", f.source);
    if (f.state) add("state", std::string(RunStateName(*f.state)));
    sql += " ORDER BY started_unix_ms DESC, id DESC";
    if (f.limit > 0) {
      params.push_back(static_cast<int64_t>(f.limit));
      sql += " LIMIT $" + std::to_string(params.size());
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(sql, params);
    if (!r.ok()) return r.status();
    std::vector<RunRecord> out;
    for (const auto& row : r->rows) out.push_back(RunFromRow(row));
    return out;
  }

  Result<Annotation> AddAnnotation(const Annotation& a) override {
    if (a.text.empty()) return InvalidArgument("an annotation needs text");
    std::lock_guard<std::mutex> lock(mu_);
    auto exists = conn_->Execute("SELECT id FROM faultline_runs WHERE id = $1", {a.run_id});
    if (!exists.ok()) return exists.status();
    if (exists->rows.empty()) return NotFound("no run " + a.run_id + " in " + conn_->Describe());
    Annotation out = a;
    if (out.at_unix_ms == 0) out.at_unix_ms = clock_->WallUnixMs();
    auto r = conn_->Execute(
        "INSERT INTO faultline_annotations (run_id, at_unix_ms, author, body) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        {out.run_id, out.at_unix_ms, out.author, out.text});
    if (!r.ok()) return r.status();
    if (!r->rows.empty()) out.id = ToInt(r->rows[0][0]);
    return out;
  }

  Status AddSchedule(const Schedule& s) override {
    if (s.name.empty() || s.spec_yaml.empty() || s.cron.empty()) {
      return InvalidArgument("a schedule needs a name, an experiment and a cron expression");
    }
    std::lock_guard<std::mutex> lock(mu_);
    int64_t created = s.created_unix_ms != 0 ? s.created_unix_ms : clock_->WallUnixMs();
    auto r = conn_->Execute(
        std::string("INSERT INTO faultline_schedules (") + kScheduleColumns +
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        {s.name, s.spec_yaml, s.cron, s.tz, ConcurrencyPolicyName(s.concurrency), s.window,
         JoinDates(s.blackout_dates), static_cast<int64_t>(s.paused ? 1 : 0), created});
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("a schedule named " + s.name + " already exists");
    }
    return r.status();
  }

  Status RemoveSchedule(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute("DELETE FROM faultline_schedules WHERE name = $1", {name});
    if (!r.ok()) return r.status();
    return r->affected == 0 ? NotFound("no schedule named " + name) : Status::Ok();
  }

  Status SetSchedulePaused(const std::string& name, bool paused) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute("UPDATE faultline_schedules SET paused = $2 WHERE name = $1",
                            {name, static_cast<int64_t>(paused ? 1 : 0)});
    if (!r.ok()) return r.status();
    return r->affected == 0 ? NotFound("no schedule named " + name) : Status::Ok();
  }

  Result<Schedule> GetSchedule(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        std::string("SELECT ") + kScheduleColumns + " FROM faultline_schedules WHERE name = $1",
        {name});
    if (!r.ok()) return r.status();
    if (r->rows.empty()) return NotFound("no schedule named " + name);
    return ScheduleFromRow(r->rows[0]);
  }

  Result<std::vector<Schedule>> ListSchedules() override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        std::string("SELECT ") + kScheduleColumns + " FROM faultline_schedules ORDER BY name", {});
    if (!r.ok()) return r.status();
    std::vector<Schedule> out;
    for (const auto& row : r->rows) out.push_back(ScheduleFromRow(row));
    return out;
  }

  Status RecordFiring(const Firing& f) override {
    if (f.schedule.empty() || f.outcome.empty()) {
      return InvalidArgument("a firing needs a schedule and an outcome");
    }
    std::lock_guard<std::mutex> lock(mu_);
    int64_t recorded = f.recorded_unix_ms != 0 ? f.recorded_unix_ms : clock_->WallUnixMs();
    auto r = conn_->Execute(std::string("INSERT INTO faultline_firings (") + kFiringColumns +
                                ") VALUES ($1, $2, $3, $4, $5, $6)",
                            {f.schedule, f.due_unix_ms, recorded, f.outcome, f.run_id, f.holder});
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("schedule " + f.schedule + " due at " + std::to_string(f.due_unix_ms) +
                           " is already recorded");
    }
    return r.status();
  }

  Status UpdateFiring(const std::string& schedule, int64_t due_unix_ms, const std::string& outcome,
                      const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        "UPDATE faultline_firings SET outcome = $3, run_id = $4 "
        "WHERE schedule = $1 AND due_unix_ms = $2",
        {schedule, due_unix_ms, outcome, run_id});
    if (!r.ok()) return r.status();
    return r->affected == 0
               ? NotFound("no firing of " + schedule + " at " + std::to_string(due_unix_ms))
               : Status::Ok();
  }

  Result<std::vector<Firing>> ListFirings(const std::string& schedule, int limit) override {
    std::string sql = std::string("SELECT ") + kFiringColumns + " FROM faultline_firings";
    std::vector<SqlValue> params;
    if (!schedule.empty()) {
      params.push_back(schedule);
      sql += " WHERE schedule = $1";
    }
    sql += " ORDER BY due_unix_ms DESC, schedule";
    if (limit > 0) {
      params.push_back(static_cast<int64_t>(limit));
      sql += " LIMIT $" + std::to_string(params.size());
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(sql, params);
    if (!r.ok()) return r.status();
    std::vector<Firing> out;
    for (const auto& row : r->rows) out.push_back(FiringFromRow(row));
    return out;
  }

  Result<std::optional<int64_t>> LastFiringDue(const std::string& schedule) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute("SELECT MAX(due_unix_ms) FROM faultline_firings WHERE schedule = $1",
                            {schedule});
    if (!r.ok()) return r.status();
    if (r->rows.empty() || !r->rows[0][0]) return std::optional<int64_t>();
    return std::optional<int64_t>(ToInt(r->rows[0][0]));
  }

  Status CreateToken(const TokenRecord& t) override {
    if (t.id.empty() || t.role.empty() || t.secret_hash.empty()) {
      return InvalidArgument("a token needs an id, a role and a secret hash");
    }
    std::lock_guard<std::mutex> lock(mu_);
    int64_t created = t.created_unix_ms != 0 ? t.created_unix_ms : clock_->WallUnixMs();
    auto r = conn_->Execute(std::string("INSERT INTO faultline_tokens (") + kTokenColumns +
                                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            {t.id, t.name, t.role, t.team, t.secret_hash, created,
                             t.expires_unix_ms, t.revoked_unix_ms, t.created_by});
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("token " + t.id + " already exists");
    }
    return r.status();
  }

  Result<TokenRecord> GetToken(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        std::string("SELECT ") + kTokenColumns + " FROM faultline_tokens WHERE id = $1", {id});
    if (!r.ok()) return r.status();
    if (r->rows.empty()) return NotFound("no token " + id);
    return TokenFromRow(r->rows[0]);
  }

  Result<std::vector<TokenRecord>> ListTokens() override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(std::string("SELECT ") + kTokenColumns +
                                " FROM faultline_tokens ORDER BY created_unix_ms, id",
                            {});
    if (!r.ok()) return r.status();
    std::vector<TokenRecord> out;
    for (const auto& row : r->rows) out.push_back(TokenFromRow(row));
    return out;
  }

  Status RevokeToken(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        "UPDATE faultline_tokens SET revoked_unix_ms = $2 WHERE id = $1 AND revoked_unix_ms = 0",
        {id, clock_->WallUnixMs()});
    if (!r.ok()) return r.status();
    if (r->affected == 1) return Status::Ok();
    auto exists = conn_->Execute("SELECT id FROM faultline_tokens WHERE id = $1", {id});
    if (!exists.ok()) return exists.status();
    return exists->rows.empty() ? NotFound("no token " + id) : Status::Ok();
  }

  Status AppendAudit(const AuditRecord& a) override {
    if (a.action.empty()) return InvalidArgument("an audit record needs an action");
    std::lock_guard<std::mutex> lock(mu_);
    int64_t at = a.at_unix_ms != 0 ? a.at_unix_ms : clock_->WallUnixMs();
    return conn_
        ->Execute(
            "INSERT INTO faultline_audit (at_unix_ms, action, outcome, identity, role, team, "
            "source, peer, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            {at, a.action, a.outcome, a.identity, a.role, a.team, a.source, a.peer, a.detail})
        .status();
  }

  Result<std::vector<AuditRecord>> ListAudit(int limit) override {
    std::string sql =
        "SELECT id, at_unix_ms, action, outcome, identity, role, team, source, peer, detail "
        "FROM faultline_audit ORDER BY at_unix_ms DESC, id DESC";
    std::vector<SqlValue> params;
    if (limit > 0) {
      params.push_back(static_cast<int64_t>(limit));
      sql += " LIMIT $1";
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(sql, params);
    if (!r.ok()) return r.status();
    std::vector<AuditRecord> out;
    for (const auto& row : r->rows) {
      out.push_back({ToInt(row[0]), ToInt(row[1]), ToText(row[2]), ToText(row[3]), ToText(row[4]),
                     ToText(row[5]), ToText(row[6]), ToText(row[7]), ToText(row[8]),
                     ToText(row[9])});
    }
    return out;
  }

  Result<bool> TryAcquireLeadership(const std::string& lock_name, const std::string& holder,
                                    std::chrono::milliseconds ttl) override {
    if (holder.empty()) return InvalidArgument("a leader needs a holder name");
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = clock_->WallUnixMs();
    // One statement, atomic in both databases: insert, or take over when expired or ours.
    auto r = conn_->Execute(
        "INSERT INTO faultline_leases (name, holder, expires_unix_ms) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
        "expires_unix_ms = excluded.expires_unix_ms "
        "WHERE faultline_leases.holder = excluded.holder OR faultline_leases.expires_unix_ms <= $4",
        {lock_name, holder, now + ttl.count(), now});
    if (!r.ok()) return r.status();
    return r->affected > 0;
  }

  Status RenewLeadership(const std::string& lock_name, const std::string& holder,
                         std::chrono::milliseconds ttl) override {
    std::lock_guard<std::mutex> lock(mu_);
    // Still ours (even if it lapsed, nobody took it in between): extend.
    auto r = conn_->Execute(
        "UPDATE faultline_leases SET expires_unix_ms = $3 WHERE name = $1 AND holder = $2",
        {lock_name, holder, clock_->WallUnixMs() + ttl.count()});
    if (!r.ok()) return r.status();
    if (r->affected == 0) {
      return FailedPrecondition(holder + " no longer holds the " + lock_name + " lease");
    }
    return Status::Ok();
  }

  Status ReleaseLeadership(const std::string& lock_name, const std::string& holder) override {
    std::lock_guard<std::mutex> lock(mu_);
    return conn_
        ->Execute("DELETE FROM faultline_leases WHERE name = $1 AND holder = $2",
                  {lock_name, holder})
        .status();
  }

  Result<std::optional<Leadership>> CurrentLeader(const std::string& lock_name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = conn_->Execute(
        "SELECT holder, expires_unix_ms FROM faultline_leases "
        "WHERE name = $1 AND expires_unix_ms > $2",
        {lock_name, clock_->WallUnixMs()});
    if (!r.ok()) return r.status();
    if (r->rows.empty()) return std::optional<Leadership>();
    return std::optional<Leadership>(Leadership{ToText(r->rows[0][0]), ToInt(r->rows[0][1])});
  }

 private:
  template <typename F>
  Status InTransaction(F body) {
    if (auto s = conn_->Begin(); !s.ok()) return s;
    Status s = body();
    if (!s.ok()) {
      conn_->ExecuteScript("ROLLBACK");
      return s;
    }
    return conn_->ExecuteScript("COMMIT");
  }

  std::mutex mu_;
  std::unique_ptr<SqlConnection> conn_;
  Clock* clock_;
};

Result<std::unique_ptr<RunStore>> Finish(Result<std::unique_ptr<SqlConnection>> conn,
                                         Clock* clock) {
  if (!conn.ok()) return conn.status();
  auto store = std::make_unique<SqlRunStore>(std::move(*conn), clock);
  if (auto s = store->Migrate(); !s.ok()) {
    if (s.code() == StatusCode::kFailedPrecondition) return s;
    return Unavailable("cannot prepare the history schema in " + store->Describe() + ": " +
                       s.message());
  }
  return std::unique_ptr<RunStore>(std::move(store));
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  std::string out = url;
  // scheme://user:password@host: the password ends at the last '@' of the authority.
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t authority = scheme + 3;
    size_t end = out.find_first_of("/?#", authority);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= authority) {
      size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "****");
    }
  }
  // password=VALUE anywhere (query parameter or conninfo keyword), up to '&', space or the end.
  for (size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    size_t value = pos + std::string_view("password=").size();
    size_t stop = out.find_first_of("& ", value);
    if (stop == std::string::npos) stop = out.size();
    out.replace(value, stop - value, "****");
    pos = value + 4;
  }
  return out;
}

Result<std::unique_ptr<RunStore>> OpenRunStore(const std::string& url, Clock* clock) {
  if (url.empty()) return InvalidArgument("empty history URL");
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return Finish(OpenPostgresConnection(url), clock);
  }
  std::string path = url;
  if (url.starts_with("sqlite://")) {
    path = url.substr(std::string_view("sqlite://").size());
  } else if (url.find("://") != std::string::npos) {
    return InvalidArgument("unknown history URL scheme in '" + RedactUrl(url) +
                           "' (expected sqlite:///path, a file path, or postgresql://...)");
  }
  if (path.empty()) return InvalidArgument("history URL '" + RedactUrl(url) + "' names no file");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Unavailable("cannot create " + parent.string() + " for the history: " + ec.message());
    }
  }
  return Finish(OpenSqliteConnection(path), clock);
}

}  // namespace faultline::store
