#!/usr/bin/env bash
# Apply + revert latency of a DNS fault inside a workload's network namespace against the same
# fault on the agent's own namespace, side by side (issue 14's benchmark for the netns part):
# bench/workload_fault_driver bench RUNS /run/netns/nb-work runs in scratch namespace nb-host
# (the "host") and, RUNS times each, interleaved, applies and reverts an nxdomain fault through
# the agent's FaultManager (journal fsync included) on the host, then inside nb-work (thread
# into the namespace, the DNS backend made there, its interceptor started, nft table, revert,
# all dropped again: the cost of one fault on a workload with no other fault). Discovery is not
# included (the workload is given as a resolved handle). Prints every sample, the medians and
# their ratio. Needs root.
#   Usage: bench/netns_bench.sh [RUNS] [build-dir]
set -euo pipefail
RUNS=${1:-30}
BUILD="${2:-$(cd "$(dirname "$0")/.." && pwd)/build}"
DRIVER="$BUILD/bin/workload_fault_driver"
[ -x "$DRIVER" ] || { echo "build workload_fault_driver first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, nftables)" >&2; exit 2; }
H=nb-host W=nb-work
cleanup() { for ns in $H $W; do ip netns del $ns 2>/dev/null || true; rm -rf /etc/netns/$ns; done; }
trap cleanup EXIT
cleanup
for ns in $H $W; do
  ip netns add $ns
  ip -n $ns link set lo up
  mkdir -p /etc/netns/$ns
  echo "nameserver 127.0.0.1" >/etc/netns/$ns/resolv.conf
done
ip netns exec $H "$DRIVER" bench "$RUNS" /run/netns/$W
