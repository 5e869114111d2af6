#include "agent/host/host_call.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace faultline::agent::host {

struct HostCallPool::State {
  std::string name;
  size_t max_workers = 1;
  std::chrono::milliseconds idle_timeout{0};

  mutable std::mutex mu;
  std::condition_variable work;      // a task was queued, or the pool is being destroyed
  std::condition_variable finished;  // a task ended or a worker left: a call or a slot is free
  std::deque<std::function<void()>> queue;  // never longer than `idle`
  size_t workers = 0;                       // threads alive
  size_t idle = 0;                          // threads waiting for work
  size_t busy = 0;                          // threads running a task
  size_t abandoned = 0;                     // tasks whose caller stopped waiting
  bool closing = false;
};

HostCallPool::HostCallPool(HostCallPoolOptions options) : state_(std::make_shared<State>()) {
  state_->name = std::move(options.name);
  state_->max_workers = std::max<size_t>(1, options.max_workers);
  state_->idle_timeout = options.idle_timeout;
}

HostCallPool::~HostCallPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->closing = true;
  }
  state_->work.notify_all();
}

bool HostCallPool::TryStart(std::function<void()> task, Clock::time_point start_by) {
  std::unique_lock<std::mutex> lock(state_->mu);
  while (true) {
    // Every worker is held by a call whose caller gave up: waiting would only queue behind it.
    if (state_->abandoned >= state_->max_workers) return false;
    if (state_->idle > state_->queue.size()) {
      state_->queue.push_back(std::move(task));
      state_->work.notify_one();
      return true;
    }
    if (state_->workers < state_->max_workers) {
      state_->queue.push_back(std::move(task));
      ++state_->workers;
      try {
        // Detached on purpose: a worker stuck in the kernel must hold nobody; it owns `state`.
        std::thread([state = state_] { Work(state); }).detach();
      } catch (const std::system_error&) {
        --state_->workers;
        state_->queue.pop_back();
        return false;
      }
      return true;
    }
    if (state_->finished.wait_until(lock, start_by) == std::cv_status::timeout &&
        state_->idle <= state_->queue.size() && state_->workers >= state_->max_workers) {
      return false;
    }
  }
}

Status HostCallPool::Call(const std::string& operation, std::chrono::milliseconds deadline,
                          std::function<void()> call) {
  struct Slot {
    bool done = false;
    bool abandoned = false;
  };
  auto slot = std::make_shared<Slot>();
  const auto start = Clock::now();
  std::weak_ptr<State> weak = state_;
  bool started = TryStart(
      [weak, slot, call = std::move(call)] {
        call();
        // The pool outlives its running tasks (the worker holds the state), so this lock holds.
        std::shared_ptr<State> state = weak.lock();
        if (!state) return;
        {
          std::lock_guard<std::mutex> lock(state->mu);
          slot->done = true;
          if (slot->abandoned) --state->abandoned;
        }
        state->finished.notify_all();
      },
      start + deadline);
  if (!started) {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->abandoned >= state_->max_workers) {
      return ResourceExhausted(operation + ": every " + state_->name + " worker (" +
                               std::to_string(state_->max_workers) +
                               ") is held by an earlier call that overran its deadline");
    }
    return DeadlineExceeded(operation + " could not start within " +
                            std::to_string(deadline.count()) + " ms: every " + state_->name +
                            " worker was busy");
  }
  std::unique_lock<std::mutex> lock(state_->mu);
  if (state_->finished.wait_until(lock, start + deadline, [&] { return slot->done; })) {
    return Status::Ok();
  }
  slot->abandoned = true;
  ++state_->abandoned;
  const size_t stuck = state_->abandoned;
  lock.unlock();
  spdlog::warn(
      "{}: no answer within {} ms; the call goes on in the background ({} {} call(s) "
      "overran and still hold a worker of {})",
      operation, deadline.count(), stuck, state_->name, state_->max_workers);
  return DeadlineExceeded(operation + " did not finish within " + std::to_string(deadline.count()) +
                          " ms");
}

bool HostCallPool::WaitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->finished.wait_for(lock, timeout,
                                   [&] { return state_->busy == 0 && state_->queue.empty(); });
}

size_t HostCallPool::busy() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->busy + state_->queue.size();  // a started call a worker has not picked up yet
}

size_t HostCallPool::abandoned() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->abandoned;
}

const std::string& HostCallPool::name() const { return state_->name; }

size_t HostCallPool::max_workers() const { return state_->max_workers; }

void HostCallPool::Work(const std::shared_ptr<State>& state) {
  std::unique_lock<std::mutex> lock(state->mu);
  while (true) {
    ++state->idle;
    bool got = state->work.wait_for(lock, state->idle_timeout,
                                    [&] { return !state->queue.empty() || state->closing; });
    --state->idle;
    if (!got || state->queue.empty()) {
      --state->workers;
      state->finished.notify_all();
      return;
    }
    std::function<void()> task = std::move(state->queue.front());
    state->queue.pop_front();
    ++state->busy;
    lock.unlock();
    task();
    task = nullptr;  // release what the call captured before counting the worker free
    lock.lock();
    --state->busy;
    state->finished.notify_all();
  }
}

Status CallWithDeadline(HostCallPool& pool, const std::string& operation,
                        std::chrono::milliseconds deadline, std::function<Status()> call) {
  auto result = std::make_shared<Status>();
  Status s = pool.Call(operation, deadline, [result, call = std::move(call)] { *result = call(); });
  if (!s.ok()) return s;
  return *result;
}

}  // namespace faultline::agent::host
