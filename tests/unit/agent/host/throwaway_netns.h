#pragma once
// ThrowawayNetns: a network namespace for a root test, unnamed and held by a thread of the test
// (/proc/self/task/TID/ns/net), gone when the object is destroyed or Release()d. Needs root
// (path() is empty when unshare failed).

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>

namespace faultline::agent::host::testing {

class ThrowawayNetns {
 public:
  ThrowawayNetns() {
    std::promise<pid_t> tid;
    auto f = tid.get_future();
    thread_ = std::thread([this, &tid] {
      if (::unshare(CLONE_NEWNET) != 0) {
        tid.set_value(-1);
        return;
      }
      tid.set_value(static_cast<pid_t>(::syscall(SYS_gettid)));
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return done_; });
    });
    const pid_t t = f.get();
    if (t > 0) path_ = "/proc/self/task/" + std::to_string(t) + "/ns/net";
  }
  ~ThrowawayNetns() { Release(); }
  void Release() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  const std::string& path() const { return path_; }

 private:
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::string path_;
};

}  // namespace faultline::agent::host::testing
