#pragma once
// FanOut: one operation sent to many agents at once without a thread per agent. At most
// `max_in_flight` calls are outstanding; each attempt carries its own deadline; an attempt that
// failed in a way that says nothing about the agent's state (UNAVAILABLE: not connected or the
// stream broke; DEADLINE_EXCEEDED: no answer, e.g. a lost ack) is tried again after a jittered
// backoff, up to `max_attempts`. Retrying is only safe for idempotent operations: every agent
// operation the engine fans out is (same fault id + same spec applies once; reverting or renewing
// twice is harmless), and callers must keep it so.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/status.h"

namespace faultline::engine {

struct FanOutOptions {
  // Calls outstanding at once (>= 1): bounds the sockets, memory and agent wake-ups of one burst.
  size_t max_in_flight = 256;
  // Deadline of each attempt.
  Duration attempt_deadline = std::chrono::seconds(5);
  // Attempts per call (>= 1); only retryable failures (IsRetryable) are tried again.
  int max_attempts = 3;
  // Wait before the first retry; doubled for each further one, each wait jittered to 50-150 %
  // so that agents failed by one event are not all retried at the same instant.
  Duration retry_backoff = std::chrono::milliseconds(200);
};

// UNAVAILABLE or DEADLINE_EXCEEDED: the call may or may not have reached the agent.
inline bool IsRetryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// Starts one attempt of call `i` with `deadline`; must call `done` exactly once, from any thread
// (possibly before returning).
template <typename T>
using FanOutCall =
    std::function<void(size_t i, Duration deadline, std::function<void(Result<T>)> done)>;

// Runs calls 0..n-1 (see above) and blocks until each has its final result, returned in index
// order. `on_final(i, result)`, when set, is called once per call as soon as its final result is
// known (for timing acks), from whichever thread completed it, never concurrently with itself.
template <typename T>
std::vector<Result<T>> FanOut(size_t n, const FanOutCall<T>& start, const FanOutOptions& options,
                              const std::function<void(size_t, const Result<T>&)>& on_final = {}) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Result<T>> results;
    std::vector<int> attempts;
    std::deque<size_t> ready;                          // to start now
    std::vector<std::pair<MonoTime, size_t>> waiting;  // retries and when they may start
    size_t in_flight = 0;
    size_t finished = 0;
  };
  auto shared = std::make_shared<Shared>();
  shared->results.assign(n, Result<T>(Unavailable("not sent")));
  shared->attempts.assign(n, 0);
  for (size_t i = 0; i < n; ++i) shared->ready.push_back(i);
  const size_t max_in_flight = std::max<size_t>(1, options.max_in_flight);
  const int max_attempts = std::max(1, options.max_attempts);
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  Clock& clock = SystemClock::Instance();

  std::unique_lock lock(shared->mu);
  while (shared->finished < n) {
    // Retries whose backoff is over join the ready queue.
    MonoTime now = clock.Now();
    for (auto it = shared->waiting.begin(); it != shared->waiting.end();) {
      if (it->first <= now) {
        shared->ready.push_back(it->second);
        it = shared->waiting.erase(it);
      } else {
        ++it;
      }
    }
    if (!shared->ready.empty() && shared->in_flight < max_in_flight) {
      size_t i = shared->ready.front();
      shared->ready.pop_front();
      ++shared->in_flight;
      ++shared->attempts[i];
      const int attempt = shared->attempts[i];
      const Duration backoff = std::chrono::duration_cast<Duration>(
          options.retry_backoff * (1 << std::min(attempt - 1, 10)) * jitter(rng));
      // Started without the lock: `done` may run inline and take it.
      lock.unlock();
      start(i, options.attempt_deadline,
            [shared, i, attempt, max_attempts, backoff, &on_final, &clock](Result<T> r) {
              std::unique_lock l(shared->mu);
              --shared->in_flight;
              if (!r.ok() && IsRetryable(r.status()) && attempt < max_attempts) {
                shared->waiting.emplace_back(clock.Now() + backoff, i);
              } else {
                shared->results[i] = std::move(r);
                // Under the lock: on_final is never called concurrently with itself, and the waiter
                // cannot return (destroying on_final's captures) before it is done.
                if (on_final) on_final(i, shared->results[i]);
                ++shared->finished;
              }
              shared->cv.notify_all();
            });
      lock.lock();
      continue;
    }
    if (shared->finished >= n) break;
    if (!shared->waiting.empty() && shared->in_flight < max_in_flight) {
      MonoTime next = shared->waiting.front().first;
      for (const auto& w : shared->waiting) next = std::min(next, w.first);
      shared->cv.wait_for(lock, next - clock.Now());
    } else {
      shared->cv.wait(lock);
    }
  }
  return std::move(shared->results);
}

}  // namespace faultline::engine
