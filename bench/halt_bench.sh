#!/usr/bin/env bash
# Halt while applies are stuck (issue 13): the time from sending RevertAll to its answer (the ack
# of the last revert) on a real agent whose applies are stuck, over TRIALS trials.
# One agent (--insecure on loopback) in scratch namespace hb-a, whose resolver never answers
# (tests/integration/scratch.sh: blackholed_resolver_host). Each trial (bench/halt_driver bench):
# applies three real faults (a network blackhole, a network reject, a DNS drop of *.wedge.test:
# three nft tables), starts one network fault naming two hosts under wedge.test (stuck resolving
# them: its lookup waits for the 5 s deadline), waits until the agent counts all four, then sends
# RevertAll and times its answer, and the stuck apply's error answer. Between trials it waits for
# the agent's journal to empty (the stuck apply's backend has returned), so every trial starts alike.
# Prints every trial and median / p95 / max. Usage: bench/halt_bench.sh [--smoke] [build-dir]
# (root). TRIALS: 20, --smoke 2.
set -euo pipefail
TRIALS=20
if [ "${1:-}" = --smoke ]; then TRIALS=2; shift; fi
BUILD="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
BIN="$BUILD/bin"
for b in faultline-agent halt_driver; do
  [ -x "$BIN/$b" ] || { echo "build $b first" >&2; exit 2; }
done
# Defines fail/await, blackholed_resolver_host and scratch_agent (functions only).
source "$(cd "$(dirname "$0")/.." && pwd)/tests/integration/scratch.sh"
NS=hb-a
WORK=$(mktemp -d /tmp/haltbench.XXXXXX)
AGENT_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
  ip netns del $NS 2>/dev/null || true
  rm -rf "/etc/netns/$NS" "$WORK"
}
trap cleanup EXIT
blackholed_resolver_host $NS
scratch_agent $NS "$WORK/state" "$WORK/agent.log"
echo "agent $AGENT_ADDR in $NS; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec $NS "$BIN/halt_driver" bench "$AGENT_ADDR" "$WORK/state/journal" "$TRIALS" \
  --fault '{"network":{"blackhole":{},"match":{"cidrs":["10.99.78.0/24"]}}}' \
  --fault '{"network":{"reject":{},"match":{"cidrs":["10.99.79.0/24"]}}}' \
  --fault '{"dns":{"domains":["wedge.test"],"mode":"DROP","match":"SUFFIX"}}' \
  --stuck '{"network":{"blackhole":{},"match":{"hosts":["db.wedge.test","db2.wedge.test"]}}}'
left=$(ip netns exec $NS nft list tables | grep -c faultline_ || true)
[ "$left" = 0 ] || { echo "FAIL: $left faultline_ table(s) left after the last halt" >&2; exit 1; }
