#pragma once
// The guard mode of faultline-agent (agent/host/death_guard.h): `faultline-agent --guard
// AGENT_PID KIND ARG...` waits until the agent is gone and then undoes one fault the kernel
// cannot expire:
//   pause RECORD_DIR FAULT_ID   continue what the pause record says was stopped (and thaw a frozen
//                               cgroup), then remove the record;
//   netem RECORD_PATH           restore the root qdiscs a netem fault replaced.
// A released guard exits 0 without acting.

namespace faultline::agent {

// Runs the guard; argv[1] is host::kGuardFlag. Returns the process exit code: 0 when it acted
// successfully or was released, 1 when the undo failed, 2 for bad arguments.
int RunGuard(int argc, char** argv);

}  // namespace faultline::agent
