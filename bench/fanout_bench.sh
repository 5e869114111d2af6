#!/usr/bin/env bash
# Controller fan-out benchmark (issue 7): N real `faultline-agent --dry-run` processes attached to
# the controller on loopback; apply-to-last-ack, halt-to-last-agent and the agents' idle RSS/CPU.
# Usage: bench/fanout_bench.sh [--smoke] [BUILD_DIR]. N defaults to "10 100 1000" (FANOUT_AGENTS
# overrides); agents are started in batches of FANOUT_SPAWN_BATCH (50), each batch attached
# before the next; FANOUT_HEARTBEAT sets the heartbeat: 5 s here (`faultline-controller
# --heartbeat 5s`), because at the controller's default 1 s a thousand agents on 2 shared cores
# are dropped for missed heartbeats and the machine's load runs away (bench/RESULTS.md).
# FANOUT_AGENT_BIN runs another agent binary (default BUILD_DIR/bin/faultline-agent), e.g. a
# dynamically linked build against the static one (bench/RESULTS.md).
# Every agent is stopped on exit, whatever ends the run (the benchmark's own handlers, the
# agents' parent-death signal, and this script's trap).
set -euo pipefail
SMOKE=()
if [ "${1:-}" = "--smoke" ]; then SMOKE=(--smoke); shift; fi
BUILD="$(cd "${1:-build}" && pwd)"
AGENTS=()
for n in ${FANOUT_AGENTS:-10 100 1000}; do AGENTS+=(--agents "$n"); done
PIDS="$(mktemp /tmp/fo-fanout-pids.XXXXXX)"
cleanup() {
  # Agents still listed (the benchmark empties the file once it stopped them itself).
  while read -r pid; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done < "$PIDS"
  rm -f "$PIDS"
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bin/fanout_bench" --agent-bin "${FANOUT_AGENT_BIN:-$BUILD/bin/faultline-agent}" \
  "${AGENTS[@]}" "${SMOKE[@]}" --rounds "${FANOUT_ROUNDS:-20}" \
  --spawn-batch "${FANOUT_SPAWN_BATCH:-50}" \
  --heartbeat "${FANOUT_HEARTBEAT:-5}" --pid-file "$PIDS" --json "${FANOUT_JSON:-/tmp/fo-fanout.json}"
echo "after: load $(cut -d' ' -f1-3 /proc/loadavg)"
