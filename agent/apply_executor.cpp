#include "agent/apply_executor.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

namespace faultline::agent {

struct ApplyExecutor::State {
  std::mutex mu;
  std::condition_variable work;  // a task was queued or the executor stops
  std::condition_variable idle;  // a task finished
  std::deque<std::pair<Task, Task>> queue;
  size_t max_queued = 0;
  size_t running = 0;
  bool stopped = false;
};

ApplyExecutor::ApplyExecutor(ApplyExecutorOptions options) : state_(std::make_shared<State>()) {
  state_->max_queued = options.max_queued;
  for (size_t i = 0; i < std::max<size_t>(1, options.workers); ++i) {
    // Detached on purpose: a worker stuck in a backend must not keep the process from exiting,
    // and it keeps `state` alive by itself.
    std::thread([state = state_] { Work(state); }).detach();
  }
}

ApplyExecutor::~ApplyExecutor() { Shutdown(); }

bool ApplyExecutor::Submit(Task run, Task reject) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopped || state_->queue.size() >= state_->max_queued) return false;
    state_->queue.emplace_back(std::move(run), std::move(reject));
  }
  state_->work.notify_one();
  return true;
}

void ApplyExecutor::Shutdown() {
  std::deque<std::pair<Task, Task>> rejected;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopped = true;
    rejected.swap(state_->queue);
  }
  state_->work.notify_all();
  state_->idle.notify_all();
  for (auto& [run, reject] : rejected) {
    if (reject) reject();
  }
}

bool ApplyExecutor::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->idle.wait_for(lock, timeout,
                               [&] { return state_->running == 0 && state_->queue.empty(); });
}

size_t ApplyExecutor::running() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->running;
}

size_t ApplyExecutor::queued() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queue.size();
}

void ApplyExecutor::Work(const std::shared_ptr<State>& state) {
  std::unique_lock<std::mutex> lock(state->mu);
  while (true) {
    state->work.wait(lock, [&] { return state->stopped || !state->queue.empty(); });
    if (state->queue.empty()) return;  // stopped
    ApplyExecutor::Task run = std::move(state->queue.front().first);
    state->queue.pop_front();
    ++state->running;
    lock.unlock();
    if (run) run();
    run = nullptr;  // release what the task captured before reporting idle
    lock.lock();
    --state->running;
    state->idle.notify_all();
  }
}

}  // namespace faultline::agent
