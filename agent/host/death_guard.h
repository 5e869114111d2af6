#pragma once
// DeathGuard: undoes a fault the kernel cannot expire (a paused process, a netem qdisc) when the
// agent itself is gone.
//
// The agent spawns a small guard process, `faultline-agent --guard AGENT_PID KIND ARG...` (argv,
// no shell; its own session, so a terminal's Ctrl-C or a kill of the agent's process group does
// not take it along), holding the write end of a pipe to the guard's stdin. The guard watches the
// agent's pidfd and that pipe:
//   - the agent writes "release" (the fault was reverted normally): the guard exits, doing nothing;
//   - the agent's pidfd becomes readable or the pipe closes without "release" (the agent died):
//     the guard undoes the fault (KIND and ARG say what; main dispatches it) and exits;
//   - SIGTERM (systemd stopping the unit's leftover processes after the agent died): undo when
//     the agent is gone, exit quietly when it still runs (it reverts on its own).

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace faultline::agent::host {

// The first argument that selects the guard mode of faultline-agent.
inline constexpr const char* kGuardFlag = "--guard";

class DeathGuard {
 public:
  // Spawns `/proc/self/exe --guard <this pid> args...` and waits until it watches this process
  // (it answers "ready" on its stdout), so a crash right after Spawn returns is covered.
  // INTERNAL when the guard cannot be started or does not come up within `timeout`.
  static Result<std::unique_ptr<DeathGuard>> Spawn(
      const std::vector<std::string>& args,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Release().
  ~DeathGuard();
  DeathGuard(const DeathGuard&) = delete;
  DeathGuard& operator=(const DeathGuard&) = delete;

  // Tells the guard the fault was reverted, so it exits without acting, and reaps it (waits at
  // most about a second, then kills it). Idempotent; not thread-safe (one owner).
  void Release();

  pid_t pid() const { return pid_; }

 private:
  DeathGuard(pid_t pid, int to_guard) : pid_(pid), to_guard_(to_guard) {}
  pid_t pid_;
  int to_guard_;  // write end of the guard's stdin; -1 once released
};

// In the guard process: waits until the agent `agent_pid` is gone (true: undo the fault) or the
// agent released the guard (false). Announces "ready" on stdout once it watches the agent.
// INTERNAL when the agent's pidfd cannot be opened (it is already gone: the caller undoes).
Result<bool> AwaitAgentGone(pid_t agent_pid);

}  // namespace faultline::agent::host
