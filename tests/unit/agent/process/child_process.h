#pragma once
// A forked child that only sleeps, with a process name (comm) unique to the test, so selecting
// it by name can never touch anything else on the machine. The child calls only
// async-signal-safe functions after fork.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "agent/process/proc_reader.h"

namespace faultline::agent::process::testing {

class ChildProcess {
 public:
  // `name`: at most 15 characters.
  explicit ChildProcess(const std::string& name) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      while (true) ::pause();
    }
    // The name is set by the child itself: wait until /proc shows it.
    AwaitState([&](const ProcessInfo& p) { return p.comm == name; });
  }
  ~ChildProcess() { KillAndReap(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  uint64_t start_time() const {
    auto p = ReadProcess(pid_);
    return p.ok() ? p->start_time : 0;
  }

  // Polls /proc/<pid>/stat until `want` holds or 10 s pass (a deadline, not a delay).
  template <typename Predicate>
  bool AwaitState(Predicate want) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto p = ReadProcess(pid_);
      if (p.ok() && want(*p)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  bool AwaitStopped() const {
    return AwaitState([](const ProcessInfo& p) { return p.state == 'T' || p.state == 't'; });
  }
  bool AwaitRunning() const {
    return AwaitState([](const ProcessInfo& p) { return p.state == 'S' || p.state == 'R'; });
  }
  // Waits for the child to die of a signal; returns the signal (0 when it did not).
  int AwaitDeathSignal() {
    if (pid_ <= 0) return 0;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return 0;
    pid_ = -1;
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  void KillAndReap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int pid_ = -1;
};

// "pf<test pid><suffix>": unique on the machine while the test runs.
inline std::string UniqueName(const std::string& suffix) {
  return ("pf" + std::to_string(::getpid()) + suffix).substr(0, 15);
}

}  // namespace faultline::agent::process::testing
