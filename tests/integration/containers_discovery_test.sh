#!/usr/bin/env bash
# Workload discovery through a real container runtime: Podman's Docker Engine API socket, real
# containers (no registry: a root filesystem built from the project's binaries), a real agent.
# - `faultline workloads --label app=...` finds exactly the labelled containers, each with its
#   pid and the identity (dev, inode) of its network namespace, as podman and /proc see them;
# - GetInfo reports the runtime found;
# - an experiment whose workload label matches nothing never starts: exit 4, a clear message,
#   no fault applied (negative control: the same run against the matching label gets past
#   target resolution and names the containers).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/tests/integration/scratch.sh"
source "$ROOT/tests/integration/containers_lib.sh"
command -v podman >/dev/null || fail "podman is not installed (scripts/lib.sh installs it)"

WORK="$(mktemp -d /tmp/faultline-ct.XXXXXX)"
AGENT_PID=""
cleanup() {
  local rc=$?
  [ -z "$AGENT_PID" ] || kill "$AGENT_PID" 2>/dev/null || true
  [ $rc -eq 0 ] || { echo "--- agent log"; tail -n 40 "$WORK/agent.log"; } >&2 || true
  containers_cleanup
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

containers_init "$WORK/podman"
ROOTFS_DIR="$WORK/rootfs"
build_rootfs "$ROOTFS_DIR" "$(command -v sleep)"
SOCK="$WORK/podman.sock"
podman_service "$SOCK"

container_start fl-disc-orders-1 --label app=orders-disc -- /usr/bin/sleep 600 >/dev/null
container_start fl-disc-orders-2 --label app=orders-disc --label tier=web -- /usr/bin/sleep 600 >/dev/null
container_start fl-disc-kv-1 --label app=kv-disc -- /usr/bin/sleep 600 >/dev/null

"$BIN/faultline-agent" --listen 127.0.0.1:0 --insecure --name ct-host --label role=app \
  --state-dir "$WORK/state" --docker-socket "$SOCK" --cri-socket none \
  --ready-file "$WORK/agent.ready" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
await 20 test -s "$WORK/agent.ready" || fail "agent did not start"
ADDR=$(cat "$WORK/agent.ready")
cat >"$WORK/inventory.yaml" <<INV
agents:
  - name: ct-host
    address: $ADDR
    labels: {role: app}
INV
FL=("$BIN/faultline")

# GetInfo names the runtime it found.
"${FL[@]}" agents --inventory "$WORK/inventory.yaml" --insecure --output json >"$WORK/agents.json"
jq -e '.[0].runtimes.docker | test("Libpod/")' "$WORK/agents.json" >/dev/null ||
  fail "GetInfo does not report the Podman runtime: $(jq -c '.[0].runtimes' "$WORK/agents.json")"
pass "GetInfo reports $(jq -r '.[0].runtimes.docker' "$WORK/agents.json")"

# Discovery by label: exactly the two orders containers.
"${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime docker \
  --label app=orders-disc --output json >"$WORK/orders.json"
names=$(jq -r '[.[].name] | sort | join(",")' "$WORK/orders.json")
[ "$names" = "fl-disc-orders-1,fl-disc-orders-2" ] || fail "label app=orders-disc found: $names"
for name in fl-disc-orders-1 fl-disc-orders-2; do
  pid=$(container_pid "$name")
  got_pid=$(jq -r --arg n "$name" '.[] | select(.name == $n) | .pids[0]' "$WORK/orders.json")
  [ "$got_pid" = "$pid" ] || fail "$name: pid $got_pid, podman says $pid"
  ino=$(stat -L -c %i "/proc/$pid/ns/net")
  dev=$(stat -L -c %d "/proc/$pid/ns/net")
  got=$(jq -r --arg n "$name" '.[] | select(.name == $n) | "\(.netns_dev):\(.netns_ino)"' "$WORK/orders.json")
  [ "$got" = "$dev:$ino" ] || fail "$name: netns $got, /proc/$pid/ns/net is $dev:$ino"
  [ "$ino" != "$(stat -L -c %i /proc/self/ns/net)" ] || fail "$name shares the host's netns"
  id=$(jq -r --arg n "$name" '.[] | select(.name == $n) | .id' "$WORK/orders.json")
  [ "$id" = "$("${PODMAN[@]}" inspect -f '{{.Id}}' "$name")" ] || fail "$name: id $id"
done
pass "label app=orders-disc: exactly the 2 orders containers, with their pids and netns identities"

# Two labels narrow it (all must match); a name picks one.
n=$("${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime docker \
  --label app=orders-disc --label tier=web --output json | jq -r '[.[].name] | join(",")')
[ "$n" = "fl-disc-orders-2" ] || fail "app=orders-disc,tier=web found: $n"
n=$("${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime docker \
  --name fl-disc-kv-1 --output json | jq -r '[.[].name] | join(",")')
[ "$n" = "fl-disc-kv-1" ] || fail "name fl-disc-kv-1 found: $n"
pass "labels are ANDed, names are exact"

# A runtime-free pid handle resolves to the same netns.
pid=$(container_pid fl-disc-kv-1)
got=$("${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --pid "$pid" \
  --output json | jq -r '.[0].netns_ino')
[ "$got" = "$(stat -L -c %i "/proc/$pid/ns/net")" ] || fail "pid handle: netns inode $got"
pass "pid handle resolves to the container's netns"

# A run whose workload label matches nothing never starts: exit 4, nothing applied.
experiment() {  # experiment LABEL
  cat <<EXP
apiVersion: faultline/v1
kind: Experiment
metadata: {name: containers-discovery}
targets:
  orders: {selector: {role: app}, workloads: {runtime: docker, labels: {app: $1}}, mode: all}
faults:
  - name: orders-dns
    target: orders
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: 2s
probes:
  - name: p
    tcp: {address: "$ADDR"}
    interval: 200ms
objectives:
  - {name: o, probe: p, recover_within: 10s}
EXP
}
experiment nothing-has-this >"$WORK/none.yaml"
set +e
"${FL[@]}" run "$WORK/none.yaml" --inventory "$WORK/inventory.yaml" --insecure \
  >"$WORK/none.out" 2>&1
rc=$?
set -e
[ $rc -eq 4 ] || { cat "$WORK/none.out" >&2; fail "no matching workload: exit $rc, want 4"; }
grep -q "no workload matches" "$WORK/none.out" || { cat "$WORK/none.out" >&2; fail "no clear message"; }
active=$("${FL[@]}" agents --inventory "$WORK/inventory.yaml" --insecure --output json | jq '.[0].active_faults')
[ "$active" = 0 ] || fail "$active faults active after a run that never started"
grep -q "ApplyFault" "$WORK/agent.log" && fail "the agent received an ApplyFault"
pass "label matching nothing: exit 4 ($(grep -o 'no workload matches[^"]*' "$WORK/none.out" | head -n 1 | cut -c1-60)...), nothing applied"

# Control: the matching label resolves both containers (faults inside them are tested in
# containers_faults_test.sh).
experiment orders-disc >"$WORK/match.yaml"
set +e
"${FL[@]}" run "$WORK/match.yaml" --inventory "$WORK/inventory.yaml" --insecure \
  >"$WORK/match.out" 2>&1
set -e
grep -q "no workload matches" "$WORK/match.out" && fail "matching label reported as no match"
grep -q "fl-disc-orders-1" "$WORK/match.out" || { cat "$WORK/match.out" >&2; fail "run does not name fl-disc-orders-1"; }
grep -q "fl-disc-orders-2" "$WORK/match.out" || fail "run does not name fl-disc-orders-2"
pass "matching label: the run names both containers"
