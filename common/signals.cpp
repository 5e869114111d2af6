#include "common/signals.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace faultline {
namespace {

[[noreturn]] void Die(const char* what) {
  // Only reachable when the process is out of file descriptors at start-up: without the
  // signal thread a stop signal would be lost, so refuse to continue.
  std::fprintf(stderr, "faultline: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

BlockedSignals::BlockedSignals(std::initializer_list<int> signals) {
  sigemptyset(&set_);
  for (int s : signals) sigaddset(&set_, s);
  pthread_sigmask(SIG_BLOCK, &set_, &previous_);
}

int BlockedSignals::Wait() const {
  int number = 0;
  while (sigwait(&set_, &number) != 0) {
  }
  return number;
}

int BlockedSignals::WaitFor(std::chrono::nanoseconds timeout, siginfo_t* info) const {
  if (timeout.count() < 0) timeout = std::chrono::nanoseconds(0);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  siginfo_t local{};
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::nanoseconds(0);
    timespec wait{static_cast<time_t>(left.count() / 1000000000),
                  static_cast<long>(left.count() % 1000000000)};
    int number = ::sigtimedwait(&set_, info != nullptr ? info : &local, &wait);
    if (number > 0) return number;
    if (errno == EAGAIN) return 0;
    // EINTR: another signal's handler ran; wait out the rest.
  }
}

SignalThread::SignalThread(const BlockedSignals& signals, std::function<void(int)> on_signal) {
  signal_fd_ = ::signalfd(-1, &signals.set(), SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) Die("signalfd");
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) Die("eventfd");
  thread_ = std::thread([this, on_signal = std::move(on_signal)] {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    while (true) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) {
        signalfd_siginfo info{};
        if (::read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
          on_signal(static_cast<int>(info.ssi_signo));
        }
      }
    }
  });
}

SignalThread::~SignalThread() {
  uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(signal_fd_);
  ::close(stop_fd_);
}

}  // namespace faultline
