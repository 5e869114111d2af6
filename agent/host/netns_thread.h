#pragma once
// NetnsThread: one thread of the agent that lives in another network namespace (a container's or
// a pod's) and runs host calls there, so a fault acts inside a workload without moving the agent:
// the agent's other threads stay where they are.
//
// Open opens the namespace's path (/run/netns/x, /proc/PID/ns/net), checks that it still names
// the namespace recorded when the workload was resolved (its nsfs dev/ino) and starts a thread
// that joins it with setns(CLONE_NEWNET). What a call creates on that thread belongs to the
// namespace for good: sockets (also libnftables' netlink socket), and the threads and processes
// it starts (a new thread or a fork inherits its creator's namespace), which is how the DNS
// interceptor's loop, the proxy's loop, the dead-man refresher and iptables' argv end up inside.
// Holding the thread keeps the namespace alive (an open reference), also after its workload
// exited; PathStillNamesIt tells whether the workload's path still names it.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/workloads/workload.h"
#include "common/status.h"

namespace faultline::agent::host {

using workloads::NetnsIdentity;

// How long a host call in a namespace may take unless the caller says otherwise.
inline constexpr std::chrono::milliseconds kNetnsCallDeadline{10000};

// The identity of the namespace a path names is workloads::StatNetns
// (agent/workloads/netns_identity.h), the one helper for it.

// The network namespace of the calling thread (/proc/thread-self/ns/net). Thread-safe.
Result<NetnsIdentity> CurrentThreadNetns();

class NetnsThread {
 public:
  // Opens `path`, refuses it unless it names `expected` (FAILED_PRECONDITION "... is not the
  // recorded namespace"; NOT_FOUND when the path is gone; INVALID_ARGUMENT for an invalid
  // identity), starts the thread and waits (up to `deadline`) for it to enter the namespace and
  // confirm its own identity (INTERNAL when setns fails, DEADLINE_EXCEEDED when it does not
  // answer in time). Needs CAP_SYS_ADMIN.
  static Result<std::shared_ptr<NetnsThread>> Open(
      const std::string& path, const NetnsIdentity& expected,
      std::chrono::milliseconds deadline = kNetnsCallDeadline);

  // Stops the thread after the call in progress; calls not started yet are dropped (their
  // waiters, if any still wait, get ABORTED). Must not be called from the thread itself.
  ~NetnsThread();
  NetnsThread(const NetnsThread&) = delete;
  NetnsThread& operator=(const NetnsThread&) = delete;

  // Runs `fn` on the thread (inside the namespace), in submission order, and waits for it.
  // Returns fn's status; DEADLINE_EXCEEDED when it has not finished within `deadline` (if it had
  // not started it never will; if it had, it finishes later and its result is dropped), ABORTED
  // when the thread is stopping. `fn` must own or share what it uses (it may outlive the wait).
  // Thread-safe; calling it from the thread itself runs `fn` directly (no deadlock).
  Status Run(std::function<Status()> fn, std::chrono::milliseconds deadline = kNetnsCallDeadline);

  // Run for a call that returns a value.
  template <typename T>
  Result<T> Call(std::function<Result<T>()> fn,
                 std::chrono::milliseconds deadline = kNetnsCallDeadline) {
    auto out = std::make_shared<std::optional<Result<T>>>();
    Status s = Run(
        [fn = std::move(fn), out]() {
          *out = fn();
          return out->value().ok() ? Status::Ok() : out->value().status();
        },
        deadline);
    if (!s.ok()) return s;
    return std::move(**out);
  }

  // True when the calling thread is this thread.
  bool OnThread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // Whether `path()` still names this namespace (false once the workload's netns file is gone or
  // names another namespace: the workload exited or was replaced). Thread-safe.
  bool PathStillNamesIt() const;

  const std::string& path() const { return path_; }
  const NetnsIdentity& identity() const { return identity_; }

 private:
  struct Task;
  NetnsThread(std::string path, NetnsIdentity identity, int fd);
  void Loop();

  const std::string path_;
  const NetnsIdentity identity_;
  const int fd_;  // the namespace, open for the thread's setns; closed by the destructor

  std::mutex mu_;
  std::condition_variable cv_;               // tasks queued, a task done, stop, entered
  std::deque<std::shared_ptr<Task>> queue_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  std::optional<Status> entered_;            // guarded by mu_: the thread's setns outcome
  std::thread thread_;
};

}  // namespace faultline::agent::host
