#pragma once
// EventLoop: the agent's one event-loop style (agent/host/README.md), shared by the dependency
// proxy and the DNS interceptor. One thread of its own blocked in epoll_wait over non-blocking
// fds; other threads hand it work through Post (an eventfd in the same epoll set wakes it); time
// comes from one timerfd on the monotonic clock, armed at an absolute deadline; Stop wakes the
// thread through the same eventfd and joins it (no flag polling, no sleeps).
//
// The owner registers its fds with a 64-bit tag of its choosing (any value but the two reserved
// below) and receives every readiness event as Handler::OnEvent(tag, events); it keeps its own
// deadlines and arms the one timer with the earliest (ArmTimer), getting Handler::OnTimer when it
// fires. SIGPIPE is blocked on the loop thread, so a write to a closed peer cannot kill the agent.

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"

namespace faultline::agent::host {

using LoopTime = std::chrono::steady_clock::time_point;
inline constexpr LoopTime kNoDeadline = LoopTime::max();

// How long a listener whose accept() failed for lack of fds stays unwatched before it is tried
// again (an owner resumes it sooner when one of its connections closes).
inline constexpr std::chrono::milliseconds kAcceptBackoff{100};
// Whether accept() failed with `err` for lack of fds or memory (EMFILE, ENFILE, ENOBUFS,
// ENOMEM): the connection stays in the backlog and the listener readable, so watching it again at
// once would spin; unwatch it for kAcceptBackoff instead.
bool IsAcceptExhaustion(int err);

class EventLoop {
 public:
  // What the loop thread calls. Every method runs on the loop thread.
  class Handler {
   public:
    virtual ~Handler() = default;
    // Once, on the loop thread, before the first wait.
    virtual void OnLoopStart() {}
    // `tag`'s fd is ready: `events` as epoll_wait reported them (EPOLLERR/EPOLLHUP included
    // even when not asked for: a handler must act on them or unwatch the fd, else it spins).
    virtual void OnEvent(uint64_t tag, uint32_t events) = 0;
    // The armed deadline passed (the timer is disarmed by then; arm it again as needed).
    virtual void OnTimer() = 0;
    // After each batch of events (and timer/Post wake-ups) is handled, before the next wait: the
    // place to run what came due meanwhile and re-arm the timer.
    virtual void OnBatchEnd() {}
  };

  // Tags the loop keeps for itself.
  static constexpr uint64_t kWakeTag = ~uint64_t{0};
  static constexpr uint64_t kTimerTag = ~uint64_t{0} - 1;

  // Creates the epoll set, the eventfd and the timerfd. INTERNAL when one cannot be created.
  static Result<std::unique_ptr<EventLoop>> Create();
  // Stops (see Stop) and closes the loop's own fds (never the owner's).
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the loop thread, which serves `handler` (it must outlive Stop).
  // FAILED_PRECONDITION when started before. Not restartable after Stop.
  Status Start(Handler& handler);
  // Ends the loop after the event it is handling and joins the thread; commands posted and not
  // yet run are dropped (destroyed on the caller's thread). Idempotent; any thread but the loop's.
  void Stop();
  // Runs `fn` on the loop thread soon (in posting order). false, and `fn` dropped, once Stop has
  // begun. Any thread.
  bool Post(std::function<void()> fn);
  // Whether the caller is the loop thread.
  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }

  // Loop thread, or before Start. Thin epoll_ctl wrappers: false (errno set) on failure.
  bool Watch(int fd, uint32_t events, uint64_t tag);
  bool Rewatch(int fd, uint32_t events, uint64_t tag);
  void Unwatch(int fd);
  // Arms the timer at `at` (kNoDeadline disarms); no system call when it is armed there already.
  // A deadline already passed fires at once. Loop thread, or before Start.
  void ArmTimer(LoopTime at);
  // The epoll set, for owners that register fds themselves (same rules as Watch).
  int epoll_fd() const { return epoll_fd_; }

 private:
  EventLoop() = default;
  void Run(Handler& handler);
  void RunPosted();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int timer_fd_ = -1;
  LoopTime armed_ = kNoDeadline;  // loop thread
  bool stopping_ = false;         // loop thread
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_
  bool closed_ = false;                        // guarded by mu_: Stop has begun
  bool started_ = false;                       // Start/Stop callers
};

}  // namespace faultline::agent::host
