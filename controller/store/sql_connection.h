#pragma once
// Private to controller/store: the few things SqlRunStore needs from a database connection, so
// one implementation of the RunStore logic and one set of SQL statements serve SQLite and
// PostgreSQL. Parameters are written $1, $2, ... in both dialects.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace faultline::store {

using SqlValue = std::variant<std::string, int64_t>;

struct SqlRows {
  // Every column as text (NULL as nullopt); callers convert.
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  // Runs one statement with parameters bound to $1..$N. A unique or primary-key violation is
  // ALREADY_EXISTS; a lost or unreachable database UNAVAILABLE; anything else INTERNAL, with the
  // database's message. Not thread-safe: SqlRunStore serialises callers.
  virtual Result<SqlRows> Execute(const std::string& sql, const std::vector<SqlValue>& params) = 0;
  // Runs several parameterless statements separated by ';' (schema scripts).
  virtual Status ExecuteScript(const std::string& sql) = 0;
  // Starts a transaction that takes the write lock at once (SQLite: BEGIN IMMEDIATE).
  virtual Status Begin() = 0;
  virtual bool IsPostgres() const = 0;
  // Where it is, without credentials.
  virtual std::string Describe() const = 0;
};

// Opens (creating) an SQLite file in WAL mode with a busy timeout. UNAVAILABLE on failure.
Result<std::unique_ptr<SqlConnection>> OpenSqliteConnection(const std::string& path);
// Connects with a libpq connection string or URI. UNAVAILABLE on failure.
Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string& conninfo);

}  // namespace faultline::store
