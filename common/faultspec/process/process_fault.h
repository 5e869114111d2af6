#pragma once
// The process fault kind (v1::ProcessFault): every field's rule and limit, in one place for the
// agent and the experiment parser.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/faultspec/field_problems.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::faultspec {

inline constexpr size_t kMaxProcessName = 255;
inline constexpr size_t kMaxPidfilePath = 4096;
inline constexpr uint32_t kMaxProcessCount = 100'000;
inline constexpr uint32_t kMinKillIntervalMs = 100;
inline constexpr uint32_t kMaxKillIntervalMs = 3'600'000;

// The signals a KILL fault may send, as the proto spells them.
inline constexpr std::string_view kProcessSignalNames[] = {
    "SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGABRT", "SIGUSR1", "SIGUSR2"};

// True when `name` is one of kProcessSignalNames (exact spelling).
bool IsProcessSignalName(std::string_view name);

// Adds a problem for every field of `fault` that breaks a rule (paths start with `path`,
// normally "process"): action kill or pause; signal empty or one of kProcessSignalNames, and
// only for kill; interval_ms 0 or 100 ms to 1 h, only for kill; exactly one selector: name
// (1-255 printable characters, no '/', not "." or ".."), pidfile (an absolute path of at most
// 4096 printable characters, no ".." component, no trailing '/') or cgroup (ValidateCgroupPath);
// count (at most 100000) or percent (at most 100), not both. Pure.
void ValidateProcessFault(const v1::ProcessFault& fault, const std::string& path,
                          FieldProblems* problems);

}  // namespace faultline::faultspec
