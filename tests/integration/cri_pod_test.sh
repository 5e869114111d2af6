#!/usr/bin/env bash
# Real pods through containerd's CRI, found by label by the agent (issue 14 item 6). A private
# containerd 1.6 (cri/containerd_lib.sh) runs pod sandboxes from a locally built pause image, on
# Debian's CNI bridge; cri/cri_pod.py starts them as a kubelet would (RunPodSandbox). Then:
#  - `faultline workloads --runtime cri --label app=orders` through the agent finds exactly the
#    orders pod: its name, namespace and labels, the pause process among its pids, and the netns
#    the pod really has (same inode as /proc/PID/ns/net of the pause process, holding the pod's
#    CNI address);
#  - negative controls: another label finds the other pod only, an unknown label none;
#  - a fault inside the pod: `faultline run` rejects TCP to the CNI gateway's echo port inside
#    orders-0's netns only (asserted from inside it: refused; from inside billing-0 and from the
#    node: connected; the run's own probe from the node never fails); Ctrl-C reverts it and
#    nothing is left in the pod's netns;
#  - a stopped pod is no longer a target (READY pods only).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/tests/integration/scratch.sh"
source "$ROOT/tests/integration/cri/containerd_lib.sh"
command -v containerd >/dev/null || fail "containerd is not installed (scripts/lib.sh installs it)"
/usr/bin/python3 -c 'import grpc' 2>/dev/null || fail "python3-grpcio is not installed (scripts/lib.sh)"
POD=("$ROOT/tests/integration/cri/cri_pod.py")

WORK="$(mktemp -d /tmp/faultline-cripod.XXXXXX)"
AGENT_PID="" PODS=() ECHO_PID="" RUN_PID=""
cleanup() {
  local rc=$? id p
  for p in "$RUN_PID" "$ECHO_PID" "$AGENT_PID"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
  for id in "${PODS[@]}"; do
    "${POD[@]}" "$CTD_SOCK" stop "$id" 2>/dev/null || true
    "${POD[@]}" "$CTD_SOCK" remove "$id" 2>/dev/null || true
  done
  [ $rc -eq 0 ] || { tail -n 20 "$WORK/containerd.log"; tail -n 20 "$WORK/agent.log"; } >&2 || true
  stop_containerd "$WORK"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

start_containerd "$WORK"
import_pause_image "$WORK"
run_pod() {  # run_pod NAME NAMESPACE LABEL...: prints the pod sandbox id (the caller keeps it)
  "${POD[@]}" "$CTD_SOCK" run "$1" "$2" "uid-$1" "${@:3}" || fail "RunPodSandbox $1 failed"
}
orders_id=$(run_pod orders-0 shop app=orders tier=backend)
PODS+=("$orders_id")
billing_id=$(run_pod billing-0 shop app=billing)
PODS+=("$billing_id")
pass "RunPodSandbox through containerd's CRI: orders-0 ${orders_id:0:12}, billing-0 ${billing_id:0:12}"

"$BIN/faultline-agent" --listen 127.0.0.1:0 --insecure --name cri-host --label role=node \
  --state-dir "$WORK/state-agent" --cri-socket "$CTD_SOCK" --docker-socket none \
  --ready-file "$WORK/agent.ready" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
await 20 test -s "$WORK/agent.ready" || fail "agent did not start"
printf 'agents:\n  - name: cri-host\n    address: %s\n    labels: {role: node}\n' \
  "$(cat "$WORK/agent.ready")" >"$WORK/inventory.yaml"
workloads() {
  "$BIN/faultline" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime cri \
    --output json "$@"
}

out=$(workloads --label app=orders)
[ "$(jq length <<<"$out")" = 1 ] || fail "app=orders should find one pod: $out"
jq -e --arg id "$orders_id" '.[0] | .kind == "pod" and .runtime == "cri" and .id == $id and
  .name == "orders-0" and .namespace == "shop" and .labels.app == "orders" and
  .labels.tier == "backend" and (.netns_path | length > 0)' <<<"$out" >/dev/null ||
  fail "the orders pod as discovered: $out"
# The truth from the runtime itself: the pause process's pid (ctr) and its network namespace.
pause_pid=$(ctr --address "$CTD_SOCK" -n k8s.io tasks ls | awk -v id="$orders_id" '$1 == id {print $2}')
[ -n "$pause_pid" ] || fail "ctr lists no task for the orders pod"
jq -e --argjson p "$pause_pid" '.[0].pids | index($p) != null' <<<"$out" >/dev/null ||
  fail "the pause process $pause_pid is not among the pod's pids: $(jq -c '.[0].pids' <<<"$out")"
netns_path=$(jq -r '.[0].netns_path' <<<"$out")
[ "$(stat -L -c %i "$netns_path")" = "$(stat -L -c %i "/proc/$pause_pid/ns/net")" ] ||
  fail "the discovered netns $netns_path is not the pause process's"
[ "$(jq -r '.[0].netns_ino' <<<"$out")" = "$(stat -L -c %i "/proc/$pause_pid/ns/net")" ] ||
  fail "netns_ino is not the pod's netns inode"
pod_ip=$(nsenter --net="$netns_path" ip -4 -o addr show dev eth0 | awk '{print $4}')
[[ "$pod_ip" == 10.79.0.* ]] || fail "the pod's netns has no CNI address on eth0: '$pod_ip'"
pass "app=orders: the orders pod, its pause pid $pause_pid, its own netns ($pod_ip)"

# Negative controls: the other label, and one nobody has.
out=$(workloads --label app=billing)
[ "$(jq -r '[.[].name] | join(",")' <<<"$out")" = billing-0 ] || fail "app=billing found: $out"
[ "$(jq -r '.[0].netns_ino' <<<"$out")" != "$(stat -L -c %i "/proc/$pause_pid/ns/net")" ] ||
  fail "two pods share one netns"
out=$(workloads --label app=nothing)
[ "$(jq length <<<"$out")" = 0 ] || fail "app=nothing found: $out"
pass "app=billing finds only billing-0, app=nothing finds none"

# A fault inside the pod: TCP to the CNI gateway's echo port rejected in orders-0's netns only.
GW=10.79.0.1 PORT=15431
billing_ns=$(workloads --label app=billing | jq -r '.[0].netns_path')
"$BIN/net_echo" serve $PORT >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!
connects() { timeout 2 nsenter --net="$1" bash -c "exec 3<>/dev/tcp/$GW/$PORT" 2>/dev/null; }
refused() { ! connects "$1"; }
await 10 connects "$netns_path" || fail "orders-0 does not reach $GW:$PORT before the fault"
connects "$billing_ns" || fail "billing-0 does not reach $GW:$PORT before the fault"
cat >"$WORK/pod-fault.yaml" <<EOF
apiVersion: faultline/v1
kind: Experiment
metadata: {name: cri-pod-fault}
targets:
  pod: {selector: {role: node}, workloads: {runtime: cri, labels: {app: orders}, namespace: shop}, mode: all}
faults:
  - name: reject
    target: pod
    network: {reject: {}, match: {cidrs: ["$GW/32"], protocol: tcp, remote_ports: [$PORT]}}
    duration: 60s
probes:
  - {name: node, tcp: {address: "$GW:$PORT"}, timeout: 1s, interval: 250ms}
steady_state: {probes: [node], for: 1s}
objectives:
  - {name: node-up, probe: node, recover_within: 30s}
EOF
"$BIN/faultline" run "$WORK/pod-fault.yaml" --inventory "$WORK/inventory.yaml" --insecure --quiet \
  --report-json "$WORK/pod.json" >"$WORK/pod-run.log" 2>&1 &
RUN_PID=$!
await 30 refused "$netns_path" || { cat "$WORK/pod-run.log"; fail "the reject never acted inside orders-0"; }
connects "$billing_ns" || fail "the sibling pod billing-0 is affected"
timeout 2 bash -c "exec 3<>/dev/tcp/$GW/$PORT" 2>/dev/null || fail "the node itself is affected"
nsenter --net="$netns_path" nft list tables | grep -q faultline_ || fail "no fault table inside orders-0"
! nsenter --net="$billing_ns" nft list tables | grep -q faultline_ || fail "a fault table inside billing-0"
! nft list tables | grep -q faultline_ || fail "a fault table on the node"
kill -INT "$RUN_PID"
set +e
wait "$RUN_PID"
rc=$?
set -e
RUN_PID=""
[ $rc -eq 3 ] || { cat "$WORK/pod-run.log"; fail "the run ended by Ctrl-C: exit $rc, want 3"; }
R="$WORK/pod.json"
jq -r '.faults[0].agents[].workload' "$R" | grep -q 'orders-0' ||
  fail "the report does not name the pod: $(jq -c '[.faults[0].agents[].workload]' "$R")"
[ "$(jq -r '.faults[0].agents[0].evidence.packets_matched // 0' "$R")" -gt 0 ] ||
  fail "evidence: $(jq -c '.faults[0].agents[0].evidence' "$R")"
[ "$(jq '[.probes[] | select(.name == "node") | .samples[] | select(.ok | not)] | length' "$R")" = 0 ] ||
  fail "the node's probe failed during the pod's fault"
connects "$netns_path" || fail "orders-0 does not reach $GW:$PORT after the revert"
[ -z "$(nsenter --net="$netns_path" nft list ruleset)" ] ||
  fail "rules left inside orders-0: $(nsenter --net="$netns_path" nft list ruleset)"
pass "network reject inside the pod orders-0 only ($(jq -r '.faults[0].agents[0].workload' "$R")); reverted, nothing left"

# A stopped pod is not a target.
"${POD[@]}" "$CTD_SOCK" stop "$orders_id" || fail "StopPodSandbox failed"
out=$(workloads --label app=orders)
[ "$(jq length <<<"$out")" = 0 ] || fail "a stopped pod is still listed: $out"
pass "a stopped pod is no longer discovered"
