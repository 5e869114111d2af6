#pragma once
// Starting the long-lived child processes of a benchmark (agents, a controller, simulators) so
// that none outlives it. Header-only. For a program run to completion use faultline::RunProcess
// (common/process.h).

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace faultline::bench {

struct SpawnOptions {
  std::string log = "/dev/null";  // the child's stderr, and its stdout without `pipes`
  bool pipes = false;             // give the child a stdin and stdout pipe (Spawned::in/out)
  int nice = 0;                   // the child's niceness (0: unchanged)
};

struct Spawned {
  pid_t pid = -1;       // -1 when fork failed (errno set)
  FILE* in = nullptr;   // its stdin, with `pipes`
  FILE* out = nullptr;  // its stdout, with `pipes`
};

// fork+exec of argv (argv[0] a path; never a shell). fork+exec rather than posix_spawn so the
// child asks for SIGTERM when this process dies, however it dies (crash, kill -9), and its signal
// mask is cleared (benchmarks block SIGINT/SIGTERM to handle them in a thread). The caller records
// and reaps the pid. Not async-signal-safe; call from a normal thread.
inline Spawned SpawnTied(const std::vector<std::string>& argv, const SpawnOptions& options = {}) {
  int to_child[2] = {-1, -1}, from_child[2] = {-1, -1};
  if (options.pipes && (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0)) {
    return {};
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    if (options.nice != 0) setpriority(PRIO_PROCESS, 0, options.nice);
    const int fd = open(options.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (options.pipes) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
    } else if (fd >= 0) {
      dup2(fd, 1);
    }
    if (fd >= 0) dup2(fd, 2);
    execve(args[0], args.data(), environ);
    _exit(127);
  }
  Spawned s;
  s.pid = pid;
  if (options.pipes) {
    close(to_child[0]);
    close(from_child[1]);
    if (pid < 0) {
      close(to_child[1]);
      close(from_child[0]);
      return s;
    }
    s.in = fdopen(to_child[1], "w");
    s.out = fdopen(from_child[0], "r");
  }
  return s;
}

}  // namespace faultline::bench
