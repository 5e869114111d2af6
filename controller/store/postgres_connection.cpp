// SqlConnection over one libpq session.
#include <libpq-fe.h>

#include <memory>
#include <string>

#include "controller/store/sql_connection.h"

namespace faultline::store {
namespace {

// SQLSTATE of unique_violation.
constexpr const char* kUniqueViolation = "23505";

void IgnoreNotice(void*, const char*) {}  // "relation already exists, skipping" etc.

class PostgresConnection final : public SqlConnection {
 public:
  explicit PostgresConnection(PGconn* conn) : conn_(conn) {
    PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
    const char* user = PQuser(conn_);
    const char* host = PQhost(conn_);
    const char* port = PQport(conn_);
    const char* db = PQdb(conn_);
    describe_ = std::string("postgresql://") + (user ? user : "") + "@" + (host ? host : "") + ":" +
                (port ? port : "") + "/" + (db ? db : "");
  }
  ~PostgresConnection() override { PQfinish(conn_); }

  Result<SqlRows> Execute(const std::string& sql, const std::vector<SqlValue>& params) override {
    if (auto s = EnsureConnected(); !s.ok()) return s;
    std::vector<std::string> text;
    text.reserve(params.size());
    for (const auto& p : params) {
      if (const auto* s = std::get_if<std::string>(&p)) {
        text.push_back(*s);
      } else {
        text.push_back(std::to_string(std::get<int64_t>(p)));
      }
    }
    std::vector<const char*> values;
    for (const auto& t : text) values.push_back(t.c_str());
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(
        PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                     nullptr, nullptr, 0),
        PQclear);
    if (auto s = Check(res.get()); !s.ok()) return s;
    SqlRows out;
    int rows = PQntuples(res.get());
    int cols = PQnfields(res.get());
    for (int r = 0; r < rows; ++r) {
      std::vector<std::optional<std::string>> row;
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c)));
        }
      }
      out.rows.push_back(std::move(row));
    }
    const char* tuples = PQcmdTuples(res.get());
    out.affected = (tuples && *tuples) ? std::stoll(tuples) : 0;
    return out;
  }

  Status ExecuteScript(const std::string& sql) override {
    if (auto s = EnsureConnected(); !s.ok()) return s;
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(PQexec(conn_, sql.c_str()), PQclear);
    return Check(res.get());
  }

  Status Begin() override { return ExecuteScript("BEGIN"); }
  bool IsPostgres() const override { return true; }
  std::string Describe() const override { return describe_; }

 private:
  // A session lost between calls (server restart) is re-established once; inside a transaction
  // the transaction is gone anyway, so the caller's statement fails as UNAVAILABLE.
  Status EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    PQreset(conn_);
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    return Unavailable("PostgreSQL " + describe_ + ": " + PQerrorMessage(conn_));
  }

  Status Check(PGresult* res) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
    std::string msg = "PostgreSQL " + describe_ + ": " +
                      (res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    if (state && std::string(state) == kUniqueViolation) return AlreadyExists(msg);
    if (PQstatus(conn_) != CONNECTION_OK) return Unavailable(msg);
    return Internal(msg);
  }

  PGconn* conn_;
  std::string describe_;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Unavailable("PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfinish(conn);
    return Unavailable("cannot connect to PostgreSQL: " + msg);
  }
  return std::unique_ptr<SqlConnection>(std::make_unique<PostgresConnection>(conn));
}

}  // namespace faultline::store
