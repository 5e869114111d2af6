#include "agent/host/death_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace faultline::agent::host {
namespace {

constexpr const char kRelease[] = "release\n";
constexpr const char kReady[] = "ready\n";

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Reaps `pid`, waiting at most `timeout`; kills it when it does not exit in time.
void Reap(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int pidfd = PidfdOpen(pid);
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    (void)::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    ::close(pidfd);
  }
  if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<std::unique_ptr<DeathGuard>> DeathGuard::Spawn(const std::vector<std::string>& args,
                                                      std::chrono::milliseconds timeout) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Internal("guard: pipe: " + std::string(strerror(errno)));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return Internal("guard: pipe: " + std::string(strerror(errno)));
  }
  std::vector<std::string> argv_s = {"faultline-agent", kGuardFlag, std::to_string(::getpid())};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own session: a signal to the agent's process group (Ctrl-C) does not reach it. Default
  // signal mask and dispositions: the agent blocks signals for its own signal thread.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    return Internal("guard: cannot start: " + std::string(strerror(rc)));
  }
  auto guard = std::unique_ptr<DeathGuard>(new DeathGuard(pid, in[1]));
  // Wait for "ready": from then on a crash of this process is seen by the guard.
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[64];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (got != kReady) {
    guard->Release();
    return Internal("guard: did not come up (said '" + got.substr(0, 64) + "')");
  }
  return guard;
}

DeathGuard::~DeathGuard() { Release(); }

void DeathGuard::Release() {
  if (to_guard_ < 0) return;
  (void)!::write(to_guard_, kRelease, sizeof(kRelease) - 1);
  ::close(to_guard_);
  to_guard_ = -1;
  Reap(pid_, std::chrono::seconds(1));
}

Result<bool> AwaitAgentGone(pid_t agent_pid) {
  // SIGTERM through a signalfd, so it is one more event of the poll below; SIGINT and SIGHUP are
  // ignored (they are meant for the agent).
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &term, nullptr);
  int sfd = ::signalfd(-1, &term, SFD_CLOEXEC);
  int pidfd = PidfdOpen(agent_pid);
  if (pidfd < 0) {
    return Internal("guard: pidfd_open(" + std::to_string(agent_pid) +
                    "): " + std::string(strerror(errno)));
  }
  (void)!::write(STDOUT_FILENO, kReady, sizeof(kReady) - 1);
  std::string said;
  while (true) {
    pollfd p[3] = {{pidfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}, {sfd, POLLIN, 0}};
    int n = ::poll(p, sfd >= 0 ? 3 : 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal("guard: poll: " + std::string(strerror(errno)));
    }
    if (p[0].revents != 0) return true;  // the agent exited
    if (p[1].revents != 0) {
      char buf[64];
      ssize_t r = ::read(STDIN_FILENO, buf, sizeof(buf));
      if (r > 0) {
        said.append(buf, static_cast<size_t>(r));
        if (said.find(kRelease) != std::string::npos) return false;
        if (said.size() > 256) said.erase(0, said.size() - 16);
        continue;
      }
      // The pipe closed without "release": the agent is gone (its pidfd may lag by a moment).
      return true;
    }
    if (sfd >= 0 && p[2].revents != 0) {
      pollfd agent{pidfd, POLLIN, 0};
      return ::poll(&agent, 1, 0) > 0;
    }
  }
}

}  // namespace faultline::agent::host
