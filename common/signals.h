#pragma once
// Signals taken synchronously: a program blocks its stop signals in main before any thread
// exists (every thread inherits the mask), then takes them with Wait/WaitFor, or with a
// SignalThread that calls a function for each. No asynchronous handler ever runs, so the code that
// reacts to a signal may lock, allocate and log.

#include <signal.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <thread>

namespace faultline {

class BlockedSignals {
 public:
  // Blocks `signals` in the calling thread and remembers its previous mask. Threads created
  // afterwards inherit the block. Call in main before any other thread exists: a thread that does
  // not block them could take a signal with its default action (usually: the process dies).
  // The block is not lifted on destruction (a late signal then stays pending rather than killing
  // the process while it is shutting down). Never fails for valid signal numbers.
  explicit BlockedSignals(std::initializer_list<int> signals);

  // Waits until one of the signals is pending, takes it and returns its number. Retries on EINTR.
  // Any thread may call it; a signal is taken by exactly one waiter.
  int Wait() const;

  // As Wait, for at most `timeout`: returns the signal's number (and fills `info` when given), or 0
  // when the time ran out first. A zero or negative timeout only takes an already pending signal.
  int WaitFor(std::chrono::nanoseconds timeout, siginfo_t* info = nullptr) const;

  // The blocked set.
  const sigset_t& set() const { return set_; }
  // The calling thread's mask before the constructor: restore it in a child between fork and
  // exec, so the child starts with the signal mask a fresh process would have.
  const sigset_t& previous_mask() const { return previous_; }

 private:
  sigset_t set_;
  sigset_t previous_;
};

// Calls `on_signal(number)` on a thread of its own for every signal of `signals` that arrives,
// one at a time, until destroyed.
// Precondition: `signals` were blocked in every thread of the process (BlockedSignals in main), and
// outlive this object. Only one SignalThread (or Wait caller) per signal at a time.
// The destructor stops the thread and joins it; it must not be called from `on_signal`.
// A signal that arrives after destruction stays pending (blocked), as before construction.
class SignalThread {
 public:
  SignalThread(const BlockedSignals& signals, std::function<void(int)> on_signal);
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  int signal_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace faultline
