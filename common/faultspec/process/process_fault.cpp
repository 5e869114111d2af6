#include "common/faultspec/process/process_fault.h"

#include <algorithm>

#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {
namespace {

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
}

}  // namespace

bool IsProcessSignalName(std::string_view name) {
  return std::find(std::begin(kProcessSignalNames), std::end(kProcessSignalNames), name) !=
         std::end(kProcessSignalNames);
}

void ValidateProcessFault(const v1::ProcessFault& f, const std::string& path,
                          FieldProblems* problems) {
  using v1::ProcessFault;
  const bool kill = f.action() == ProcessFault::KILL;
  if (!kill && f.action() != ProcessFault::PAUSE) {
    problems->Add(path + ".action", "must be kill or pause");
  }
  if (kill) {
    if (!f.signal().empty() && !IsProcessSignalName(f.signal())) {
      problems->Add(path + ".signal",
                    "must be one of SIGKILL, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGABRT, SIGUSR1, "
                    "SIGUSR2");
    }
    if (f.interval_ms() != 0 &&
        (f.interval_ms() < kMinKillIntervalMs || f.interval_ms() > kMaxKillIntervalMs)) {
      problems->Add(path + ".interval_ms", "must be 0 or from 100ms to 1h");
    }
  } else {
    if (!f.signal().empty()) {
      problems->Add(path + ".signal",
                    "only for action kill (pause sends SIGSTOP and, at revert, SIGCONT)");
    }
    if (f.interval_ms() != 0) {
      problems->Add(path + ".interval_ms",
                    "only for action kill (kill restarted processes every interval)");
    }
  }
  switch (f.selector_case()) {
    case ProcessFault::kName: {
      const std::string& n = f.name();
      if (n.empty() || n.size() > kMaxProcessName || !Printable(n) ||
          n.find('/') != std::string::npos || n == "." || n == "..") {
        problems->Add(path + ".name",
                      "expected a process name or executable basename (1-255 printable "
                      "characters, no '/')");
      }
      break;
    }
    case ProcessFault::kPidfile: {
      const std::string& p = f.pidfile();
      if (p.empty() || p.front() != '/' || p.size() > kMaxPidfilePath || !Printable(p) ||
          p.find("/../") != std::string::npos || p.ends_with("/..") || p.back() == '/') {
        problems->Add(path + ".pidfile",
                      "expected an absolute path of a file holding a pid, without '..'");
      }
      break;
    }
    case ProcessFault::kCgroup:
      if (Status s = ValidateCgroupPath(f.cgroup()); !s.ok()) {
        problems->Add(path + ".cgroup", s.message());
      }
      break;
    case ProcessFault::SELECTOR_NOT_SET:
      problems->Add(path, "needs exactly one selector: name, pidfile or cgroup");
      break;
  }
  if (f.count() != 0 && f.percent() != 0) {
    problems->Add(path + ".percent", "give count or percent, not both");
  }
  if (f.count() > kMaxProcessCount) problems->Add(path + ".count", "at most 100000");
  if (f.percent() > 100) problems->Add(path + ".percent", "must be 1 to 100");
}

}  // namespace faultline::faultspec
