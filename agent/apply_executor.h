#pragma once
// ApplyExecutor: a small bounded pool of worker threads that runs fault applies off the gRPC
// callback threads. An apply may wait on the host (a journal fsync, netlink, a name lookup with
// its deadline, a backend that misbehaves); a gRPC callback thread must never wait like that, and
// a revert or a halt must never queue behind it. Reverts therefore never go through here.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace faultline::agent {

struct ApplyExecutorOptions {
  // Threads running applies at once. An apply stuck in a backend holds one until it returns.
  size_t workers = 4;
  // Applies waiting for a free worker; beyond this Submit refuses (the caller answers
  // RESOURCE_EXHAUSTED).
  size_t max_queued = 32;
};

class ApplyExecutor {
 public:
  using Task = std::function<void()>;

  // Starts the worker threads.
  explicit ApplyExecutor(ApplyExecutorOptions options = {});
  // Shutdown(), then returns without waiting for a running task: the workers are detached and
  // own the executor's internal state, so a worker stuck in a task never blocks the owner's exit.
  // Precondition: whatever a still-running task uses outlives it (agent/main.cpp ends the
  // process with _exit instead of destroying the service and the manager when a task is stuck).
  ~ApplyExecutor();
  ApplyExecutor(const ApplyExecutor&) = delete;
  ApplyExecutor& operator=(const ApplyExecutor&) = delete;

  // Queues `run` for a worker. Returns false, calling neither, when max_queued tasks already
  // wait or after Shutdown. A task still queued at Shutdown gets `reject` instead of `run` (on
  // the thread calling Shutdown), so every accepted task ends in exactly one of the two.
  // Thread-safe; never blocks.
  bool Submit(Task run, Task reject);

  // Refuses further tasks and rejects the queued ones. Running tasks go on. Idempotent;
  // thread-safe.
  void Shutdown();

  // Waits until no task runs or is queued, at most `timeout`. True when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);

  // Tasks running now / waiting now.
  size_t running() const;
  size_t queued() const;

 private:
  struct State;
  static void Work(const std::shared_ptr<State>& state);
  std::shared_ptr<State> state_;
};

}  // namespace faultline::agent
