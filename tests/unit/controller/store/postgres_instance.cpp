#include "tests/unit/controller/store/postgres_instance.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/process.h"

namespace faultline::testing {

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace {

constexpr int kSharedPort = 15750;  // ctlstore's test range; only names the socket file
constexpr auto kReadyDeadline = std::chrono::seconds(30);

// The newest /usr/lib/postgresql/<version>/bin holding a `postgres` server binary.
Result<std::string> FindServerBin() {
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int version = std::atoi(entry.path().filename().c_str());
    if (fs::exists(entry.path() / "bin" / "postgres") && version > best_version) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty()) {
    return FailedPrecondition(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the "
        "Debian package `postgresql` (scripts/test.sh installs every package the tests need)");
  }
  return best;
}

}  // namespace

Result<std::unique_ptr<PostgresInstance>> PostgresInstance::Start(int port) {
  auto bin = FindServerBin();
  if (!bin.ok()) return bin.status();
  struct passwd* pw = getpwnam("postgres");
  if (pw == nullptr) {
    return FailedPrecondition("no `postgres` system user (install the Debian package postgresql)");
  }
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;

  std::unique_ptr<PostgresInstance> pg(new PostgresInstance());
  pg->bin_ = *bin;
  pg->port_ = port;
  std::string tmpl = (fs::temp_directory_path() / "cs-pg-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return Internal("mkdtemp failed");
  pg->dir_ = tmpl;
  if (chown(pg->dir_.c_str(), uid, gid) != 0) return Internal("chown " + pg->dir_ + " failed");

  std::string data = pg->dir_ + "/data";
  // initdb as the postgres user, through runuser's argv (no shell).
  if (auto s =
          RunChecked({"runuser", "-u", "postgres", "--", pg->bin_ + "/initdb", "-D", data, "-A",
                      "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"},
                     std::chrono::seconds(120));
      !s.ok()) {
    return Internal("initdb failed: " + s.message());
  }
  try {
    pg->server_ =
        bp::child(bp::exe = pg->bin_ + "/postgres",
                  bp::args = {"-D", data, "-k", pg->dir_, "-p", std::to_string(port), "-c",
                              "listen_addresses=", "-c", "fsync=off", "-c",
                              "synchronous_commit=off", "-c", "full_page_writes=off"},
                  bp::std_in.close(), (bp::std_out & bp::std_err) > (pg->dir_ + "/server.log"),
                  bp::extend::on_exec_setup([uid, gid](auto&) {
                    // Drop root for good, then ask for SIGQUIT (immediate shutdown) should the test
                    // process die (a credential change clears the death signal, so it is set
                    // after).
                    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
                      _exit(127);
                    prctl(PR_SET_PDEATHSIG, SIGQUIT);
                  }));
  } catch (const std::exception& e) {
    return Internal(std::string("cannot start postgres: ") + e.what());
  }
  // Await readiness: pg_isready exits 0 once the server accepts connections.
  auto deadline = std::chrono::steady_clock::now() + kReadyDeadline;
  while (true) {
    auto r =
        RunProcess({pg->bin_ + "/pg_isready", "-q", "-h", pg->dir_, "-p", std::to_string(port)},
                   std::chrono::seconds(5));
    if (r.ok() && r->exit_code == 0) break;
    std::error_code ec;
    if (!pg->server_.running(ec)) {
      return Internal("postgres exited during start-up; see " + pg->dir_ + "/server.log");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded("postgres not ready within 30s; see " + pg->dir_ + "/server.log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval, not a sync
  }
  return pg;
}

Result<PostgresInstance*> PostgresInstance::Shared() {
  static Result<std::unique_ptr<PostgresInstance>> shared = Start(kSharedPort);
  if (!shared.ok()) return shared.status();
  return shared->get();
}

PostgresInstance::~PostgresInstance() {
  std::error_code ec;
  if (server_.valid() && server_.running(ec)) {
    kill(server_.id(), SIGINT);  // fast shutdown
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (server_.running(ec) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (server_.running(ec)) server_.terminate(ec);
    server_.wait(ec);
  }
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

Result<std::string> PostgresInstance::CreateDatabase(const std::string& name) {
  if (auto s = RunChecked({bin_ + "/createdb", "-h", dir_, "-p", std::to_string(port_), "-U",
                           "postgres", "--strategy=file_copy", name});
      !s.ok()) {
    return s;
  }
  return "postgresql:///" + name + "?host=" + dir_ + "&port=" + std::to_string(port_) +
         "&user=postgres";
}

}  // namespace faultline::testing
