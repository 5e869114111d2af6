#include "agent/host/event_loop.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace faultline::agent::host {

bool IsAcceptExhaustion(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  loop->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  loop->timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (loop->epoll_fd_ < 0 || loop->wake_fd_ < 0 || loop->timer_fd_ < 0 ||
      !loop->Watch(loop->wake_fd_, EPOLLIN, kWakeTag) ||
      !loop->Watch(loop->timer_fd_, EPOLLIN, kTimerTag)) {
    return Internal(std::string("event loop: epoll/eventfd/timerfd: ") + std::strerror(errno));
  }
  return loop;
}

EventLoop::~EventLoop() {
  Stop();
  for (int fd : {epoll_fd_, wake_fd_, timer_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

Status EventLoop::Start(Handler& handler) {
  if (started_) return FailedPrecondition("event loop already started");
  started_ = true;
  thread_ = std::thread([this, &handler] { Run(handler); });
  return Status::Ok();
}

void EventLoop::Stop() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    posted_.push_back([this] { stopping_ = true; });
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  dropped.swap(posted_);
}

bool EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  return true;
}

bool EventLoop::Watch(int fd, uint32_t events, uint64_t tag) {
  epoll_event e{};
  e.events = events;
  e.data.u64 = tag;
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) == 0;
}

bool EventLoop::Rewatch(int fd, uint32_t events, uint64_t tag) {
  epoll_event e{};
  e.events = events;
  e.data.u64 = tag;
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e) == 0;
}

void EventLoop::Unwatch(int fd) { ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::ArmTimer(LoopTime at) {
  if (at == armed_) return;
  armed_ = at;
  itimerspec spec{};
  if (at != kNoDeadline) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    if (ns <= 0) ns = 1;  // 0 would disarm
    spec.it_value.tv_sec = ns / 1'000'000'000;
    spec.it_value.tv_nsec = ns % 1'000'000'000;
  }
  ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EventLoop::RunPosted() {
  uint64_t n;
  (void)!::read(wake_fd_, &n, sizeof(n));
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard lock(mu_);
    todo.swap(posted_);
  }
  for (auto& fn : todo) {
    if (stopping_) break;
    fn();
  }
}

void EventLoop::Run(Handler& handler) {
  thread_id_ = std::this_thread::get_id();
  // SIGPIPE is thread-directed: blocked here, a write to a closed peer cannot kill the agent.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  handler.OnLoopStart();
  epoll_event events[256];
  while (!stopping_) {
    int n = ::epoll_wait(epoll_fd_, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event loop: epoll_wait: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n && !stopping_; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        RunPosted();
      } else if (tag == kTimerTag) {
        // Nothing to read: re-armed since it fired, by an event handled before this one.
        uint64_t expirations;
        if (::read(timer_fd_, &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
        armed_ = kNoDeadline;
        handler.OnTimer();
      } else {
        handler.OnEvent(tag, events[i].events);
      }
    }
    if (!stopping_) handler.OnBatchEnd();
  }
  thread_id_ = std::thread::id();
}

}  // namespace faultline::agent::host
