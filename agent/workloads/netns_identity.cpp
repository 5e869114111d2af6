#include "agent/workloads/netns_identity.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace faultline::agent::workloads {

Result<NetnsIdentity> StatNetns(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string m = "cannot open network namespace " + path + ": " + std::strerror(err);
    if (err == ENOENT) return NotFound(m);
    return FailedPrecondition(m);
  }
  struct stat st {};
  const int type = ::ioctl(fd, NS_GET_NSTYPE);
  const int stat_rc = ::fstat(fd, &st);
  ::close(fd);
  if (type != CLONE_NEWNET) {
    return FailedPrecondition(path + " is not a network namespace");
  }
  if (stat_rc != 0) return Internal("fstat " + path + ": " + std::strerror(errno));
  return NetnsIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

Result<std::string> CgroupOfPid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  if (!in) return NotFound("process " + std::to_string(pid) + " is gone");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) {
      std::string rel = line.substr(3);
      if (rel.empty() || rel.find("..") != std::string::npos) break;
      // On a hybrid layout the v2 hierarchy is mounted at /sys/fs/cgroup/unified.
      for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        std::string dir = std::string(root) + (rel == "/" ? "" : rel);
        if (::access((dir + "/cgroup.procs").c_str(), R_OK) == 0) return dir;
      }
      break;
    }
  }
  return NotFound("process " + std::to_string(pid) + " has no cgroup v2 directory");
}

namespace {

void CollectPids(const std::filesystem::path& dir, int depth, size_t max_pids,
                 std::vector<pid_t>* out) {
  std::ifstream in(dir / "cgroup.procs");
  pid_t p = 0;
  while (out->size() < max_pids && in >> p) out->push_back(p);
  if (depth >= 16) return;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (out->size() >= max_pids) return;
    std::error_code ec2;
    if (e.is_directory(ec2) && !e.is_symlink(ec2)) {
      CollectPids(e.path(), depth + 1, max_pids, out);
    }
  }
}

}  // namespace

Result<std::vector<pid_t>> PidsOfCgroup(const std::string& cgroup_dir, size_t max_pids) {
  if (::access((cgroup_dir + "/cgroup.procs").c_str(), R_OK) != 0) {
    return NotFound(cgroup_dir + " is not a cgroup v2 directory (no cgroup.procs)");
  }
  std::vector<pid_t> pids;
  CollectPids(cgroup_dir, 0, max_pids, &pids);
  return pids;
}

}  // namespace faultline::agent::workloads
