#pragma once
// A throw-away PostgreSQL server for tests: initdb into a temporary directory and run `postgres`
// as the `postgres` system user (it refuses root), listening only on a Unix socket in that
// directory (listen_addresses=''), so nothing is reachable from the network and the port number
// only names the socket file. Stopped and deleted when the object is destroyed; if the test
// process dies first, the server gets SIGQUIT (PR_SET_PDEATHSIG) and stops on its own.

#include <boost/process/child.hpp>
#include <memory>
#include <string>

#include "common/status.h"

namespace faultline::testing {

class PostgresInstance {
 public:
  // Starts a server and waits (bounded) until it accepts connections. FAILED_PRECONDITION when
  // the PostgreSQL server binaries or the postgres user are missing (install the Debian package
  // `postgresql`; scripts/test.sh does) — tests must report that as a failure, not skip.
  static Result<std::unique_ptr<PostgresInstance>> Start(int port);

  // One server shared by every test of the process, started on first use.
  static Result<PostgresInstance*> Shared();

  ~PostgresInstance();

  // Creates a fresh, empty database and returns its libpq URI.
  Result<std::string> CreateDatabase(const std::string& name);

  const std::string& socket_dir() const { return dir_; }
  int port() const { return port_; }

 private:
  PostgresInstance() = default;

  std::string bin_;  // /usr/lib/postgresql/<v>/bin
  std::string dir_;  // temp dir: data/ and the socket
  int port_ = 0;
  boost::process::child server_;
};

}  // namespace faultline::testing
