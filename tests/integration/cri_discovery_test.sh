#!/usr/bin/env bash
# The CRI client against containerd's real CRI service (runtime.v1 over its unix socket), as far
# as this machine allows: containerd 1.6 (Debian) with its CRI plugin, private root, state and
# socket. The agent's GetInfo reports it, and ListPodSandbox answers through `faultline workloads
# --runtime cri` (no pod exists, so the list is empty and that is not an error). Real pods:
# cri_pod_test.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/tests/integration/scratch.sh"
source "$ROOT/tests/integration/cri/containerd_lib.sh"
command -v containerd >/dev/null || fail "containerd is not installed (scripts/lib.sh installs it)"

WORK="$(mktemp -d /tmp/faultline-cri.XXXXXX)"
AGENT_PID=""
cleanup() {
  local rc=$?
  [ -z "$AGENT_PID" ] || kill "$AGENT_PID" 2>/dev/null || true
  stop_containerd "$WORK"
  [ $rc -eq 0 ] || { tail -n 20 "$WORK/containerd.log"; tail -n 20 "$WORK/agent.log"; } >&2 || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

start_containerd "$WORK"

"$BIN/faultline-agent" --listen 127.0.0.1:0 --insecure --name cri-host --label role=node \
  --state-dir "$WORK/state-agent" --cri-socket "$CTD_SOCK" --docker-socket none \
  --ready-file "$WORK/agent.ready" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
await 20 test -s "$WORK/agent.ready" || fail "agent did not start"
ADDR=$(cat "$WORK/agent.ready")
printf 'agents:\n  - name: cri-host\n    address: %s\n    labels: {role: node}\n' "$ADDR" \
  >"$WORK/inventory.yaml"
FL=("$BIN/faultline")

cri=$("${FL[@]}" agents --inventory "$WORK/inventory.yaml" --insecure --output json |
  jq -r '.[0].runtimes.cri // ""')
[[ "$cri" == *containerd* ]] || fail "GetInfo does not report containerd's CRI: '$cri'"
[[ "$cri" != *"not answering"* ]] || fail "containerd's CRI does not answer Version: $cri"
pass "GetInfo reports the CRI runtime: $cri"

out=$("${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime cri \
  --label app=orders --output json)
[ "$(jq length <<<"$out")" = 0 ] || fail "ListPodSandbox with no pod found: $out"
out=$("${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime cri \
  --namespace shop --name orders-0 --output json)
[ "$(jq length <<<"$out")" = 0 ] || fail "ListPodSandbox by name found: $out"
pass "ListPodSandbox through containerd's CRI answers (no pod: empty, not an error)"

# Negative control: the runtime the agent has no socket for is a clear error (exit 4).
set +e
err=$("${FL[@]}" workloads --inventory "$WORK/inventory.yaml" --insecure --runtime docker \
  --label app=orders 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -eq 4 ] || fail "docker without a socket: exit $rc, want 4"
[[ "$err" == *--docker-socket* ]] || fail "docker without a socket: unclear message: $err"
pass "a runtime without a socket names the flag: ${err:0:100}"
