#include "agent/process/process_selector.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "common/faultspec/peer_rules.h"

namespace faultline::agent::process {
namespace {

constexpr size_t kMaxPidfileBytes = 64;

const std::map<std::string, int>& Signals() {
  static const std::map<std::string, int> kSignals = {
      {"SIGKILL", SIGKILL}, {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
      {"SIGHUP", SIGHUP},   {"SIGABRT", SIGABRT}, {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}};
  return kSignals;
}

// The pid in a pidfile: the first line, decimal. Never blocks: the pidfile must be a regular
// file (not a FIFO, a terminal such as /dev/ptmx, a directory or a symbolic link, any of which
// the application's own user could put in its place), opened without following a link and
// without waiting, and read up to kMaxPidfileBytes. NOT_FOUND when it does not exist or holds no
// valid pid, FAILED_PRECONDITION when it is not a regular file or cannot be opened.
Result<int> ReadPidfile(const std::string& path) {
  // lstat first so a device is never even opened (opening /dev/ptmx allocates a terminal); the
  // fstat after opening closes the race with a swap in between.
  struct stat before {};
  if (::lstat(path.c_str(), &before) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return NotFound("pidfile " + path + " does not exist");
    return FailedPrecondition("cannot read pidfile " + path + ": " + std::strerror(errno));
  }
  auto not_regular = [&path](mode_t mode) {
    const char* what = S_ISLNK(mode)    ? "a symbolic link"
                       : S_ISFIFO(mode) ? "a FIFO"
                       : S_ISCHR(mode)  ? "a character device"
                       : S_ISBLK(mode)  ? "a block device"
                       : S_ISDIR(mode)  ? "a directory"
                       : S_ISSOCK(mode) ? "a socket"
                                        : "not a regular file";
    return FailedPrecondition("pidfile " + path + " is " + what + "; want a regular file");
  };
  if (!S_ISREG(before.st_mode)) return not_regular(before.st_mode);
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP) return not_regular(S_IFLNK);
    if (errno == ENOENT) return NotFound("pidfile " + path + " does not exist");
    return FailedPrecondition("cannot open pidfile " + path + ": " + std::strerror(errno));
  }
  struct stat opened {};
  if (::fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode)) {
    mode_t mode = opened.st_mode;
    ::close(fd);
    return not_regular(mode);
  }
  std::string text(kMaxPidfileBytes, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.erase(0, 1);
  if (line.empty() || line.size() > 10 ||
      line.find_first_not_of("0123456789") != std::string::npos) {
    return NotFound("pidfile " + path + " does not start with a pid");
  }
  long pid = std::stol(line);
  if (pid <= 0 || pid > 0x7fffffff) {
    return NotFound("pidfile " + path + " holds an invalid pid");
  }
  return static_cast<int>(pid);
}

bool InCgroup(int pid, const std::string& normalized_cgroup) {
  auto path = CgroupV2PathOf(pid);
  if (!path) return false;
  const std::string want = "/" + normalized_cgroup;
  return *path == want || path->rfind(want + "/", 0) == 0;
}

}  // namespace

Result<int> SignalNumber(const std::string& name) {
  auto it = Signals().find(name);
  if (it == Signals().end()) return NotFound("unknown signal");
  return it->second;
}

std::string NormalizedCgroup(const std::string& cgroup) {
  return faultspec::NormalizeCgroupPath(cgroup);
}

SelectionScope ScopeForThisAgent(const std::string& named_netns_dir) {
  SelectionScope scope;
  scope.self_pid = static_cast<int>(::getpid());
  auto own = NetNamespaceOf(0);
  if (!own) return scope;
  auto init = NetNamespaceOf(1);
  if (init && !(*own == *init)) {
    scope.net_namespace = own;
    return scope;
  }
  // pid 1's namespace is not always readable (a container's init owned by another user
  // namespace); a namespace created with `ip netns add` is still recognisable by its name.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(named_netns_dir, ec)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0 &&
        NamespaceId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)} == *own) {
      scope.net_namespace = own;
      break;
    }
  }
  return scope;
}

const std::vector<std::string>& DefaultProtectedProcessNames() {
  static const std::vector<std::string> kNames = {"init",
                                                  "systemd",
                                                  "faultline-agent",
                                                  "faultline-controller",
                                                  "sshd",
                                                  "systemd-journald",
                                                  "journald",
                                                  "containerd",
                                                  "containerd-shim",
                                                  "containerd-shim-runc-v2",
                                                  "dockerd",
                                                  "docker-proxy",
                                                  "podman",
                                                  "conmon",
                                                  "runc",
                                                  "crun",
                                                  "crio"};
  return kNames;
}

bool IsProtectedName(const std::string& name, const SelectionScope& scope) {
  constexpr size_t kCommLength = 15;  // TASK_COMM_LEN - 1: a comm is a cut name
  for (const std::string& p : scope.protected_names) {
    if (name == p || (name.size() == kCommLength && p.compare(0, kCommLength, name) == 0)) {
      return true;
    }
  }
  return false;
}

bool IsEligible(const ProcessInfo& info, const SelectionScope& scope) {
  if (info.pid <= 1 || info.pid == scope.self_pid || info.kernel_thread || info.state == 'Z' ||
      info.state == 'X') {
    return false;
  }
  if (IsProtectedName(info.comm, scope) || IsProtectedName(ExeBasename(info.pid), scope)) {
    return false;
  }
  if (scope.net_namespace) {
    auto ns = NetNamespaceOf(info.pid);
    if (!ns || !(*ns == *scope.net_namespace)) return false;
  }
  return true;
}

Result<std::vector<ProcessInfo>> SelectProcesses(const v1::ProcessFault& fault,
                                                 const SelectionScope& scope, bool strict) {
  std::vector<ProcessInfo> out;
  switch (fault.selector_case()) {
    case v1::ProcessFault::kName:
      if (IsProtectedName(fault.name(), scope)) {
        if (strict) {
          return FailedPrecondition("process: '" + fault.name() +
                                    "' is a protected process (init, Faultline's agent or "
                                    "controller, sshd, journald, the container runtime, or "
                                    "the agent's --protect-process list): no fault touches it");
        }
        break;
      }
      for (ProcessInfo& p : ListProcesses()) {
        if (!IsEligible(p, scope)) continue;
        if (p.comm == fault.name() || ExeBasename(p.pid) == fault.name()) {
          out.push_back(std::move(p));
        }
      }
      break;
    case v1::ProcessFault::kPidfile: {
      Result<int> pid = ReadPidfile(fault.pidfile());
      if (!pid.ok()) {
        if (strict) return Status(pid.status().code(), "process: " + pid.status().message());
        break;
      }
      Result<ProcessInfo> p = ReadProcess(*pid);
      if (!p.ok()) {
        if (strict) {
          return NotFound("process: pidfile " + fault.pidfile() + " names pid " +
                          std::to_string(*pid) + ", which is not running");
        }
        break;
      }
      if (!IsEligible(*p, scope)) {
        if (strict) {
          return FailedPrecondition("process: pidfile " + fault.pidfile() + " names pid " +
                                    std::to_string(*pid) +
                                    ", which this agent may not signal (pid 1, the agent, a "
                                    "protected process, a kernel thread or outside its "
                                    "network namespace)");
        }
        break;
      }
      out.push_back(std::move(p).value());
      break;
    }
    case v1::ProcessFault::kCgroup: {
      const std::string cgroup = NormalizedCgroup(fault.cgroup());
      for (ProcessInfo& p : ListProcesses()) {
        if (IsEligible(p, scope) && InCgroup(p.pid, cgroup)) out.push_back(std::move(p));
      }
      break;
    }
    default:
      return InvalidArgument("process: needs exactly one selector: name, pidfile or cgroup");
  }
  return out;
}

std::vector<ProcessInfo> ProcessesInCgroup(const std::string& normalized_cgroup) {
  std::vector<ProcessInfo> out;
  for (ProcessInfo& p : ListProcesses()) {
    if (InCgroup(p.pid, normalized_cgroup)) out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<ProcessInfo>> SelectProcessesWithin(const v1::ProcessFault& fault,
                                                       const SelectionScope& scope, bool strict,
                                                       host::HostCallPool& pool,
                                                       std::chrono::milliseconds deadline) {
  // Copies: the scan may outlive this call.
  return host::CallWithDeadline<std::vector<ProcessInfo>>(
      pool, "process: selecting processes by " + DescribeSelector(fault), deadline,
      [fault, scope, strict] { return SelectProcesses(fault, scope, strict); });
}

Result<std::vector<ProcessInfo>> ProcessesInCgroupWithin(const std::string& normalized_cgroup,
                                                         host::HostCallPool& pool,
                                                         std::chrono::milliseconds deadline) {
  return host::CallWithDeadline<std::vector<ProcessInfo>>(
      pool, "process: listing the processes of cgroup '" + normalized_cgroup + "'", deadline,
      [normalized_cgroup]() -> Result<std::vector<ProcessInfo>> {
        return ProcessesInCgroup(normalized_cgroup);
      });
}

std::vector<ProcessInfo> ChooseSubset(std::vector<ProcessInfo> matching,
                                      const v1::ProcessFault& fault) {
  size_t n = matching.size();
  size_t want = n;
  if (fault.count() != 0) want = std::min<size_t>(fault.count(), n);
  if (fault.percent() != 0) want = std::max<size_t>(1, (n * fault.percent() + 99) / 100);
  want = std::min(want, n);
  if (want == n) return matching;
  std::random_device seed;
  std::mt19937 rng(seed());
  std::shuffle(matching.begin(), matching.end(), rng);
  matching.resize(want);
  std::sort(matching.begin(), matching.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return matching;
}

std::string DescribeSelector(const v1::ProcessFault& fault) {
  switch (fault.selector_case()) {
    case v1::ProcessFault::kName:
      return "name '" + fault.name() + "'";
    case v1::ProcessFault::kPidfile:
      return "pidfile '" + fault.pidfile() + "'";
    case v1::ProcessFault::kCgroup:
      return "cgroup '" + NormalizedCgroup(fault.cgroup()) + "'";
    default:
      return "no selector";
  }
}

}  // namespace faultline::agent::process
