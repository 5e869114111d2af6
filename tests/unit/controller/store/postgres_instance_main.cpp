// faultline-test-postgres PORT DBNAME: the unit tests' throw-away PostgreSQL
// (postgres_instance.h) for shell tests. Starts it on a Unix socket (PORT names the socket),
// creates DBNAME, prints its libpq URI on one line of stdout, then serves until SIGTERM or
// SIGINT, when it stops the server and deletes its files. Exit 1 when the server cannot start.
#include <signal.h>

#include <cstdio>
#include <string>

#include "common/signals.h"
#include "tests/unit/controller/store/postgres_instance.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT DBNAME\n", argv[0]);
    return 2;
  }
  const faultline::BlockedSignals stop({SIGTERM, SIGINT});
  auto pg = faultline::testing::PostgresInstance::Start(std::stoi(argv[1]));
  if (!pg.ok()) {
    std::fprintf(stderr, "postgres: %s\n", pg.status().message().c_str());
    return 1;
  }
  auto url = (*pg)->CreateDatabase(argv[2]);
  if (!url.ok()) {
    std::fprintf(stderr, "createdb: %s\n", url.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", url->c_str());
  std::fflush(stdout);
  stop.Wait();
  return 0;  // ~PostgresInstance stops the server and removes its directory
}
