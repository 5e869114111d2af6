#pragma once
// Test helper: exhausts the process's file descriptors, so accept(), socket() and open() fail
// with EMFILE while a NoFreeFds lives. It lowers RLIMIT_NOFILE to just above the highest open fd
// and fills every free slot below it; the destructor gives everything back. Affects every thread
// of the process: keep its scope short and create the sockets a test needs before it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace faultline::testing {

class NoFreeFds {
 public:
  NoFreeFds() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int highest = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') highest = std::max(highest, std::stoi(e->d_name));
    }
    ::closedir(d);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest) + 1;
    ::setrlimit(RLIMIT_NOFILE, &low);
    while (true) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
  }
  // The limit first: freeing the fillers under the low limit let another thread of the test
  // (the proxy, resuming its listener) take them all, so the next accept() elsewhere (the echo
  // server's) failed with EMFILE.
  ~NoFreeFds() {
    ::setrlimit(RLIMIT_NOFILE, &saved_);
    for (int fd : fillers_) ::close(fd);
  }
  NoFreeFds(const NoFreeFds&) = delete;
  NoFreeFds& operator=(const NoFreeFds&) = delete;

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
};

}  // namespace faultline::testing
