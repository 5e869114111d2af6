#include "agent/process/proc_reader.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace faultline::agent::process {
namespace {

constexpr uint64_t kPfKthread = 0x00200000;  // include/linux/sched.h

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

std::optional<uint64_t> ToU64(const std::string& s) {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno != 0) return std::nullopt;
  return static_cast<uint64_t>(v);
}

}  // namespace

Result<ProcessInfo> ParseProcStat(const std::string& text) {
  // "pid (comm) state ppid ...": comm may itself hold spaces and ')', so it ends at the last ')'.
  const size_t open = text.find(" (");
  const size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return InvalidArgument("malformed /proc stat: no (comm)");
  }
  ProcessInfo info;
  auto pid = ToU64(text.substr(0, open));
  if (!pid || *pid == 0 || *pid > 0x7fffffff) return InvalidArgument("malformed /proc stat: pid");
  info.pid = static_cast<int>(*pid);
  info.comm = text.substr(open + 2, close - open - 2);
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  std::string field;
  while (rest >> field && fields.size() < 20) fields.push_back(field);
  if (fields.size() < 20 || fields[0].size() != 1) {
    return InvalidArgument("malformed /proc stat: too few fields");
  }
  info.state = fields[0][0];
  auto flags = ToU64(fields[6]);        // field 9
  auto start_time = ToU64(fields[19]);  // field 22
  if (!flags || !start_time) return InvalidArgument("malformed /proc stat: flags/starttime");
  info.kernel_thread = (*flags & kPfKthread) != 0;
  info.start_time = *start_time;
  return info;
}

Result<ProcessInfo> ReadProcess(int pid) {
  if (pid <= 0) return NotFound("no process " + std::to_string(pid));
  auto text = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text || text->empty()) return NotFound("no process " + std::to_string(pid));
  return ParseProcStat(*text);
}

std::vector<ProcessInfo> ListProcesses() {
  std::vector<ProcessInfo> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* entry = ::readdir(dir)) {
    auto pid = ToU64(entry->d_name);
    if (!pid || *pid == 0 || *pid > 0x7fffffff) continue;
    Result<ProcessInfo> info = ReadProcess(static_cast<int>(*pid));
    if (info.ok()) out.push_back(std::move(info).value());
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return out;
}

std::string ExeBasename(int pid) {
  char buf[4096];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.ends_with(kDeleted)) {
    path.resize(path.size() - kDeleted.size());
  }
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::optional<std::string> CgroupV2PathOf(int pid) {
  auto text = ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return std::nullopt;
}

std::optional<NamespaceId> NetNamespaceOf(int pid) {
  const std::string path =
      (pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid)) + "/ns/net";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return NamespaceId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

Status SignalExactly(int pid, uint64_t start_time, int signal) {
  const std::string who = "pid " + std::to_string(pid);
  if (pid <= 1) return InvalidArgument("refusing to signal " + who);
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return NotFound(who + " has exited");
    return Internal("pidfd_open(" + who + "): " + std::strerror(errno));
  }
  // The pidfd now pins this pid to one process: if the start time still matches, it is the
  // process that was selected, and the signal below cannot reach any other.
  Result<ProcessInfo> now = ReadProcess(pid);
  if (!now.ok() || now->start_time != start_time) {
    ::close(fd);
    return NotFound(who + " has exited (the pid now belongs to another process)");
  }
  int rc = static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, signal, nullptr, 0));
  int err = errno;
  ::close(fd);
  if (rc == 0) return Status::Ok();
  if (err == ESRCH) return NotFound(who + " has exited");
  if (err == EPERM) return Status(StatusCode::kPermissionDenied, "signalling " + who + ": EPERM");
  return Internal("signalling " + who + ": " + std::strerror(err));
}

}  // namespace faultline::agent::process
