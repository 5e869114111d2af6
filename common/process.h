#pragma once
// Running programs: always an argv list (never a shell), always with a timeout.

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace faultline {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or by the timeout
  bool timed_out = false;
  std::string out;  // captured stdout
  std::string err;  // captured stderr
};

// Runs argv[0] (looked up in PATH when it has no '/') with argv[1..], stdin closed, and waits at
// most `timeout` (then the child is killed and timed_out is set). Returns NOT_FOUND when the
// program does not exist, INVALID_ARGUMENT for an empty argv, INTERNAL when it cannot be started.
// A non-zero exit code is not an error here: callers decide what it means.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout);

// RunProcess, then OK only when the program exited 0; otherwise the status message names the
// command and carries its stderr.
Status RunChecked(const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// "ip netns exec fl-app nft list tables" (for messages only; never executed).
std::string ArgvToString(const std::vector<std::string>& argv);

}  // namespace faultline
