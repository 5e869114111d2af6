#!/usr/bin/env bash
# The agent works with exactly the capabilities deploy/ grants it (systemd unit and DaemonSet:
# CAP_NET_ADMIN CAP_NET_RAW CAP_KILL): started with that bounding set in a scratch network
# namespace, it detects the dns and network capabilities and applies and reverts a DNS fault, an
# nftables fault and an NFQUEUE latency fault. Negative control: without CAP_NET_ADMIN the same
# run fails with exit 4 (infrastructure error). Needs root; uses namespace op-caps only.
# Usage: agent_capabilities_test.sh BIN_DIR
set -euo pipefail
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NS=op-caps
PORT=15950
WORK="$(mktemp -d /tmp/op-caps.XXXXXX)"
agent_pid=""
cleanup() {
  local rc=$?
  [ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null || true
  [ -z "$agent_pid" ] || wait "$agent_pid" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  [ $rc -eq 0 ] || { echo "--- agent log"; cat "$WORK"/agent-*.log 2>/dev/null | tail -n 30; } >&2
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
printf 'agents:\n  - name: capcheck\n    address: 127.0.0.1:%s\n    labels: {role: capcheck}\n' "$PORT" >"$WORK/inventory.yaml"

# Starts the agent in $NS with only the capabilities in $1 (setpriv syntax), waits until ready.
start_agent() {
  local caps=$1 tag=$2
  rm -f "$WORK/ready"
  ip netns exec "$NS" setpriv --bounding-set=-all,"$caps" --inh-caps=-all -- \
    "$BIN/faultline-agent" --listen "127.0.0.1:$PORT" --insecure --label role=capcheck \
    --state-dir "$WORK/state-$tag" --dns-upstream 127.0.0.1:53 --ready-file "$WORK/ready" \
    >"$WORK/agent-$tag.log" 2>&1 &
  agent_pid=$!
  local end=$(( $(date +%s) + 20 ))
  until [ -s "$WORK/ready" ]; do
    kill -0 "$agent_pid" 2>/dev/null || fail "agent ($tag) exited: $(tail -n 5 "$WORK/agent-$tag.log")"
    [ "$(date +%s)" -lt "$end" ] || fail "agent ($tag) not ready in 20 s"
    sleep 0.05
  done
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=""; }
run_check() {
  ip netns exec "$NS" "$BIN/faultline" run "$ROOT/tests/deploy/testdata/caps-check.yaml" \
    --inventory "$WORK/inventory.yaml" --insecure --quiet --report-json "$WORK/report-$1.json" \
    >"$WORK/run-$1.log" 2>&1
}

start_agent "+net_admin,+net_raw,+kill" granted
grep -q "capability available: dns" "$WORK/agent-granted.log" || fail "dns capability not detected"
grep -q "capability available: network" "$WORK/agent-granted.log" || fail "network capability not detected"
rc=0; run_check granted || rc=$?
[ $rc -eq 0 ] || { cat "$WORK/run-granted.log" >&2; fail "run with the granted capabilities exited $rc"; }
[ "$(grep -c 'fault applied' "$WORK/agent-granted.log")" -eq 3 ] || fail "not all 3 faults applied"
[ "$(grep -c 'fault reverted' "$WORK/agent-granted.log")" -eq 3 ] || fail "not all 3 faults reverted"
[ -z "$(ip netns exec "$NS" nft list tables | grep faultline_ || true)" ] || fail "tables left behind"
stop_agent
pass "with CAP_NET_ADMIN CAP_NET_RAW CAP_KILL only: dns, nftables and NFQUEUE faults applied and reverted"

start_agent "+net_raw,+kill" without-net-admin
rc=0; run_check without-net-admin || rc=$?
[ $rc -eq 4 ] || { cat "$WORK/run-without-net-admin.log" >&2; fail "without CAP_NET_ADMIN the run exited $rc, want 4"; }
stop_agent
pass "negative control: without CAP_NET_ADMIN the run is an infrastructure error (exit 4)"
