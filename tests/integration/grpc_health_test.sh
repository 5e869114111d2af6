#!/usr/bin/env bash
# grpc_health against a real gRPC server process: the sandbox's key-value service on fl-db-east
# serves grpc.health.v1 (gRPC's own health service) on 10.77.0.20:8001, in its own network
# namespace, reached over the sandbox bridge. experiments/db-grpc-health.yaml SIGKILLs it:
#   restart: the supervisor restarts it; the probe detects the crash (failing samples whose
#            detail is a gRPC status, not SERVING) and sees SERVING again: PASS (exit 0).
#   loop:    the negative control: the fault becomes a crash loop (the restarted service is
#            killed again every 250ms), so the server never serves during the fault: FAIL
#            (exit 1); after the revert it serves again.
# Usage: grpc_health_test.sh BIN_DIR restart|loop
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?restart|loop}"
EXP="$ROOT/experiments/db-grpc-health.yaml"
KV_PIDFILE="$SANDBOX_RUN/pids/kv-east-service.pid"

sandbox_up
kv_before=$(cat "$KV_PIDFILE")
# The server is a separate process in fl-db-east, listening on the bridge address.
ip netns exec fl-db-east ss -Htlnp 'sport = :8001' | grep -q "pid=$kv_before," ||
  fail "the kv service (pid $kv_before) does not listen on :8001 in fl-db-east"
if [ "$mode" = loop ]; then
  sed 's/signal: SIGKILL}/signal: SIGKILL, interval: 250ms}/' "$EXP" >"$WORK/crash-loop.yaml"
  grep -q 'interval: 250ms}' "$WORK/crash-loop.yaml" || fail "could not make the crash-loop variant"
  EXP="$WORK/crash-loop.yaml"
fi
R="$WORK/report.json"
set +e
"$BIN/faultline" run "$EXP" --report-json "$R" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
[ -f "$R" ] || fail "no JSON report"
obj() { jq -r --arg n "$1" ".objectives[] | select(.name==\$n) | .$2" "$R"; }
samples() { jq -r "[.probes[] | select(.name==\"kv-grpc-health\") | .samples[] | $1] | length" "$R"; }
# SERVING before the fault (steady state held on it) and a gRPC failure during it.
[ "$(samples 'select(.ok and .detail == "SERVING")')" -gt 0 ] || fail "no SERVING sample"
[ "$(samples 'select(.ok | not)')" -gt 0 ] || fail "the probe saw no failure: the crash was not detected"
[ "$(obj health-check-notices state)" = met ] ||
  fail "detection: $(obj health-check-notices state): $(obj health-check-notices note)"
[ "$(obj serving-after-revert verdict)" = PASS ] ||
  fail "the server should serve again after the revert: $(obj serving-after-revert note)"
kill -0 "$kv_before" 2>/dev/null && fail "the original kv process $kv_before is still alive"
if [ "$mode" = restart ]; then
  [ $rc -eq 0 ] || fail "expected PASS (0) with the supervisor restarting the server, got $rc"
  [ "$(obj serving-again state)" = met ] || fail "serving-again: $(obj serving-again note)"
  pass "grpc_health on a real server: crash detected at $(obj health-check-notices time_to_detect_s)s," \
    "SERVING again at $(obj serving-again time_to_recover_s)s" \
    "($(samples 'select(.ok | not)') failing samples: $(jq -r '[.probes[0].samples[] | select(.ok | not) | .detail] | unique | join(", ")' "$R"))"
else
  [ $rc -eq 1 ] || fail "expected FAIL (1) for the crash loop, got $rc"
  [ "$(obj serving-again state)" = missed ] || fail "serving-again should be missed: $(obj serving-again note)"
  pass "grpc_health crash loop: FAIL (negative control), SERVING again after revert"
fi
