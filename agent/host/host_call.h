#pragma once
// HostCallPool: runs a blocking host call (a libnftables transaction, a journal fsync, a /proc
// scan, a backend's revert) on a bounded set of worker threads so that its caller waits at most a
// deadline, whatever the kernel does. A call cannot be interrupted: one that overruns keeps its
// worker until it returns ("abandoned"), and when every worker is taken new calls fail at once
// instead of queueing without bound. One pool per kind of host call keeps one stuck subsystem
// (a netlink socket that never answers) from starving the others (the journal).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"

namespace faultline::agent::host {

struct HostCallPoolOptions {
  // Names the pool in messages ("nftables", "journal").
  std::string name = "host call";
  // Workers at most, busy (stuck ones included) or idle. At least 1.
  size_t max_workers = 8;
  // An idle worker ends after this long without work (workers start on demand).
  std::chrono::milliseconds idle_timeout{30'000};
};

class HostCallPool {
 public:
  using Clock = std::chrono::steady_clock;

  explicit HostCallPool(HostCallPoolOptions options = {});
  // Lets idle workers end and returns at once. Busy workers are detached and own the pool's
  // internal state, so a call still stuck in the kernel never touches freed memory of the pool;
  // what the call itself captured must be owned by it (values, shared_ptr).
  ~HostCallPool();
  HostCallPool(const HostCallPool&) = delete;
  HostCallPool& operator=(const HostCallPool&) = delete;

  // Starts `task` on a worker, waiting until `start_by` at most for one to be free (a time in
  // the past: no wait). False, and `task` is neither run nor kept, when no worker became free
  // by then, at once when every worker is held by an abandoned call (see Call), or when no
  // thread could be made. Thread-safe.
  bool TryStart(std::function<void()> task, Clock::time_point start_by);

  // Runs `call` on a worker and waits for it at most `deadline`. OK when it returned in time
  // (whatever `call` itself produced is the caller's to read, e.g. through a shared_ptr it
  // captured: see CallWithDeadline). DEADLINE_EXCEEDED naming `operation` when it did not (it
  // goes on, abandoned, on its worker); RESOURCE_EXHAUSTED naming `operation` at once when every
  // worker is held by an abandoned call. While workers are merely busy (calls that will return),
  // it waits for one within the same deadline (DEADLINE_EXCEEDED if none frees up). Thread-safe.
  Status Call(const std::string& operation, std::chrono::milliseconds deadline,
              std::function<void()> call);

  // Waits at most `timeout` until no worker runs a task. True when none does. Thread-safe.
  bool WaitIdle(std::chrono::milliseconds timeout) const;

  // Workers running a call now (abandoned ones included), and abandoned calls still running.
  size_t busy() const;
  size_t abandoned() const;
  const std::string& name() const;
  size_t max_workers() const;

 private:
  struct State;
  static void Work(const std::shared_ptr<State>& state);
  std::shared_ptr<State> state_;
};

// Runs `call` through pool.Call and returns what it returned, or pool.Call's error
// (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) naming `operation`. `call` must own what it uses: it
// may outlive this function. Thread-safe.
template <typename T>
Result<T> CallWithDeadline(HostCallPool& pool, const std::string& operation,
                           std::chrono::milliseconds deadline, std::function<Result<T>()> call) {
  auto result = std::make_shared<std::optional<Result<T>>>();
  Status s =
      pool.Call(operation, deadline, [result, call = std::move(call)] { result->emplace(call()); });
  if (!s.ok()) return s;
  return std::move(**result);
}

// The same for a call that returns a Status.
Status CallWithDeadline(HostCallPool& pool, const std::string& operation,
                        std::chrono::milliseconds deadline, std::function<Status()> call);

}  // namespace faultline::agent::host
