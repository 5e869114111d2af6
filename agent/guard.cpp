#include "agent/guard.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "agent/host/death_guard.h"
#include "agent/netfilter/netem_qdisc.h"
#include "agent/process/process_backend.h"
#include "common/ids.h"
#include "common/process.h"

namespace faultline::agent {

int RunGuard(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  pid_t agent = 0;
  try {
    if (args.size() >= 3) agent = static_cast<pid_t>(std::stoi(args[1]));
  } catch (const std::exception&) {
  }
  const bool pause = args.size() == 5 && args[2] == "pause" && IsValidFaultId(args[4]);
  const bool netem = args.size() == 4 && args[2] == "netem";
  if (agent <= 0 || (!pause && !netem)) {
    spdlog::error(
        "guard: usage: faultline-agent --guard AGENT_PID pause DIR FAULT_ID | netem PATH");
    return 2;
  }
  Result<bool> gone = host::AwaitAgentGone(agent);
  if (gone.ok() && !*gone) return 0;  // released: the agent reverted the fault itself
  spdlog::warn("guard: agent {} is gone; undoing {} {}", agent, args[2], args.back());
  Status s;
  if (pause) {
    process::ProcessBackendOptions options;
    options.record_dir = args[3];
    s = process::ProcessBackend(options).RevertOrphan(args[4], v1::FaultSpec());
  } else {
    s = netfilter::RevertNetemOrphan(&RunProcess, args[3]);
  }
  if (!s.ok()) {
    spdlog::error("guard: undo failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace faultline::agent
