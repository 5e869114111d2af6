// faultline-sample-supervisor: restarts a sandbox service whenever it exits, like systemd's
// Restart=always, so a process fault that kills the service shows downtime and then a restart
// (which the agent observes, never prevents).
//
//   faultline-sample-supervisor --pid-file F --restart-delay 1s -- PROGRAM [ARGS...]
//
// The child's pid is written to F (atomically) at every start. SIGTERM/SIGINT are passed on to
// the child; the supervisor then waits for it, removes F and exits. Signals are taken
// synchronously (sigtimedwait), so a stop that arrives while a restart is pending always wins.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/duration.h"
#include "common/signals.h"

namespace {

void Log(const std::string& message) {
  std::fprintf(stderr, "faultline-sample-supervisor: %s\n", message.c_str());
  std::fflush(stderr);
}

bool WritePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) return true;
  return faultline::WriteFileAtomically(path, std::to_string(pid) + "\n", 0644).ok();
}

// Starts argv with the signal mask and dispositions of a fresh process; -1 on failure.
pid_t Spawn(const std::vector<std::string>& argv, const sigset_t& original_mask) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::string Describe(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"faultline-sample-supervisor: restarts a sandbox service whenever it exits"};
  std::string pid_file;
  std::string restart_delay_text = "1s";
  std::vector<std::string> command;
  app.add_option("--pid-file", pid_file, "file holding the current child's pid");
  app.add_option("--restart-delay", restart_delay_text, "wait this long before a restart")
      ->capture_default_str();
  app.add_option("command", command, "PROGRAM [ARGS...] (absolute PROGRAM path), after --")
      ->required();
  CLI11_PARSE(app, argc, argv);
  auto delay = faultline::ParseDuration(restart_delay_text);
  if (!delay.ok() || delay->count() < 0) {
    Log("--restart-delay: " +
        (delay.ok() ? std::string("must not be negative") : delay.status().message()));
    return 2;
  }
  if (command[0].empty() || command[0][0] != '/') {
    Log("PROGRAM must be an absolute path, got '" + command[0] + "'");
    return 2;
  }

  const faultline::BlockedSignals handled({SIGTERM, SIGINT, SIGCHLD});

  auto start = [&]() -> pid_t {
    pid_t pid = Spawn(command, handled.previous_mask());
    if (pid < 0) {
      Log(std::string("fork: ") + std::strerror(errno));
      return -1;
    }
    if (!WritePidFile(pid_file, pid)) Log("cannot write " + pid_file);
    Log("started " + command[0] + " as pid " + std::to_string(pid));
    return pid;
  };

  pid_t child = start();
  if (child < 0) return 1;
  // Whether the child is down, and then the instant it may be started again. (Not an optional:
  // GCC 12 -O2 wrongly warns that an optional time point may be read uninitialised.)
  bool down = false;
  std::chrono::steady_clock::time_point restart_at{};
  while (true) {
    std::chrono::nanoseconds wait = std::chrono::seconds(1);
    if (down) {
      auto left = restart_at - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) {
        child = start();
        down = child < 0;
        if (down) restart_at = std::chrono::steady_clock::now() + *delay;
        continue;
      }
      wait = std::chrono::duration_cast<std::chrono::nanoseconds>(left);
    }
    int sig = handled.WaitFor(wait);
    if (sig == SIGTERM || sig == SIGINT) {
      Log(std::string("received ") + strsignal(sig) + ": stopping");
      if (child > 0 && !down) {
        ::kill(child, sig);
        int status = 0;
        ::waitpid(child, &status, 0);
        Log("child " + Describe(status));
      }
      if (!pid_file.empty()) ::unlink(pid_file.c_str());
      return 0;
    }
    if (sig != SIGCHLD) continue;
    int status = 0;
    while (true) {
      pid_t done = ::waitpid(-1, &status, WNOHANG);
      if (done <= 0) break;
      if (done != child) continue;
      Log("child pid " + std::to_string(child) + " " + Describe(status) + "; restarting in " +
          faultline::FormatDuration(*delay));
      child = -1;
      down = true;
      restart_at = std::chrono::steady_clock::now() + *delay;
    }
  }
}
