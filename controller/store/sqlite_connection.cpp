// SqlConnection over one SQLite database handle (libsqlite3).
#include <sqlite3.h>

#include <memory>
#include <string>

#include "controller/store/sql_connection.h"

namespace faultline::store {
namespace {

constexpr int kBusyTimeoutMs = 10'000;

class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }

  Result<SqlRows> Execute(const std::string& sql, const std::vector<SqlValue>& params) override {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr) !=
        SQLITE_OK) {
      return Error("prepare");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
    for (size_t i = 0; i < params.size(); ++i) {
      // "$N" is a named parameter to SQLite; look its slot up so the order of first use in the
      // statement does not matter.
      std::string name = "$" + std::to_string(i + 1);
      int slot = sqlite3_bind_parameter_index(raw, name.c_str());
      if (slot == 0) continue;
      int rc;
      if (const auto* s = std::get_if<std::string>(&params[i])) {
        rc = sqlite3_bind_text(raw, slot, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      } else {
        rc = sqlite3_bind_int64(raw, slot, std::get<int64_t>(params[i]));
      }
      if (rc != SQLITE_OK) return Error("bind");
    }
    SqlRows out;
    while (true) {
      int rc = sqlite3_step(raw);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error("step");
      int n = sqlite3_column_count(raw);
      std::vector<std::optional<std::string>> row;
      row.reserve(n);
      for (int c = 0; c < n; ++c) {
        if (sqlite3_column_type(raw, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
          row.emplace_back(std::string(text, sqlite3_column_bytes(raw, c)));
        }
      }
      out.rows.push_back(std::move(row));
    }
    out.affected = sqlite3_changes(db_);
    return out;
  }

  Status ExecuteScript(const std::string& sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return Internal("sqlite " + path_ + ": " + msg);
    }
    return Status::Ok();
  }

  Status Begin() override { return ExecuteScript("BEGIN IMMEDIATE"); }
  bool IsPostgres() const override { return false; }
  std::string Describe() const override { return "sqlite://" + path_; }

 private:
  Status Error(const char* what) const {
    int ext = sqlite3_extended_errcode(db_);
    std::string msg = "sqlite " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) {
      return AlreadyExists(msg);
    }
    if ((ext & 0xff) == SQLITE_BUSY || (ext & 0xff) == SQLITE_LOCKED) return Unavailable(msg);
    return Internal(msg);
  }

  sqlite3* db_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenSqliteConnection(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Unavailable("cannot open SQLite history " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto conn = std::make_unique<SqliteConnection>(db, path);
  // WAL: readers (faultline history) never block the writer (a run finishing) and vice versa.
  if (auto s = conn->ExecuteScript(
          "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
      !s.ok()) {
    return Unavailable(s.message());
  }
  return std::unique_ptr<SqlConnection>(std::move(conn));
}

}  // namespace faultline::store
