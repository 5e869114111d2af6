#include "agent/host/netns_thread.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/workloads/netns_identity.h"

namespace faultline::agent::host {
namespace {

Status Aborted(std::string m) { return Status(StatusCode::kAborted, std::move(m)); }

std::string Describe(const NetnsIdentity& id) {
  return "dev " + std::to_string(id.dev) + " ino " + std::to_string(id.ino);
}

}  // namespace

struct NetnsThread::Task {
  std::function<Status()> fn;
  bool started = false;  // guarded by the thread's mu_
  bool done = false;     // guarded by the thread's mu_
  Status result;         // guarded by the thread's mu_, valid when done
};

Result<NetnsIdentity> CurrentThreadNetns() {
  return workloads::StatNetns("/proc/thread-self/ns/net");
}

Result<std::shared_ptr<NetnsThread>> NetnsThread::Open(const std::string& path,
                                                       const NetnsIdentity& expected,
                                                       std::chrono::milliseconds deadline) {
  if (!expected.Valid()) {
    return InvalidArgument("network namespace " + path + ": no recorded identity to check");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound("network namespace " + path + " does not exist");
    return Internal("open " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Internal("fstat " + path + ": " + std::strerror(err));
  }
  // Checked on the fd we will setns to, so the path cannot be swapped between check and use.
  const NetnsIdentity found{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  if (!(found == expected)) {
    ::close(fd);
    return FailedPrecondition("network namespace " + path + " (" + Describe(found) +
                              ") is not the recorded namespace (" + Describe(expected) + ")");
  }
  std::shared_ptr<NetnsThread> t(new NetnsThread(path, found, fd));
  std::unique_lock lock(t->mu_);
  if (!t->cv_.wait_for(lock, deadline, [&] { return t->entered_.has_value(); })) {
    return DeadlineExceeded("network namespace " + path + ": thread did not enter it in time");
  }
  if (!t->entered_->ok()) return *t->entered_;
  return t;
}

NetnsThread::NetnsThread(std::string path, NetnsIdentity identity, int fd)
    : path_(std::move(path)), identity_(identity), fd_(fd) {
  thread_ = std::thread([this] { Loop(); });
}

NetnsThread::~NetnsThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    for (auto& task : queue_) {
      task->done = true;
      task->result = Aborted("network namespace " + path_ + ": thread stopped");
    }
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

void NetnsThread::Loop() {
  Status entered = Status::Ok();
  if (::setns(fd_, CLONE_NEWNET) != 0) {
    entered = Internal("setns " + path_ + ": " + std::strerror(errno));
  } else if (auto now = CurrentThreadNetns(); !now.ok() || !(*now == identity_)) {
    entered = Internal("setns " + path_ + ": the thread is not in the namespace afterwards");
  }
  {
    std::lock_guard lock(mu_);
    entered_ = entered;
  }
  cv_.notify_all();
  if (!entered.ok()) return;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::shared_ptr<Task> task = std::move(queue_.front());
    queue_.pop_front();
    task->started = true;
    lock.unlock();
    Status result = task->fn();
    task->fn = nullptr;  // release what it captured here, not in a waiter
    lock.lock();
    task->result = std::move(result);
    task->done = true;
    cv_.notify_all();
  }
}

Status NetnsThread::Run(std::function<Status()> fn, std::chrono::milliseconds deadline) {
  if (OnThread()) return fn();
  auto task = std::make_shared<Task>();
  task->fn = std::move(fn);
  std::unique_lock lock(mu_);
  if (stop_ || !entered_ || !entered_->ok()) {
    return Aborted("network namespace " + path_ + ": thread not running");
  }
  queue_.push_back(task);
  cv_.notify_all();
  if (cv_.wait_for(lock, deadline, [&] { return task->done; })) return task->result;
  if (!task->started) {
    std::erase(queue_, task);
    return DeadlineExceeded("network namespace " + path_ + ": call not started within " +
                            std::to_string(deadline.count()) + " ms");
  }
  return DeadlineExceeded("network namespace " + path_ + ": call still running after " +
                          std::to_string(deadline.count()) + " ms");
}

bool NetnsThread::PathStillNamesIt() const {
  auto now = workloads::StatNetns(path_);
  return now.ok() && *now == identity_;
}

}  // namespace faultline::agent::host
