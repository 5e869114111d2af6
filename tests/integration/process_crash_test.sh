#!/usr/bin/env bash
# experiments/db-process-crash.yaml against the sandbox, both ways:
#  auto: the kv service on fl-db-east is SIGKILLed; the report's evidence shows exactly one
#        process signalled (not the same program on fl-db-west) and its restart by the sandbox's
#        supervisor observed (a new pid); the orders service recovers within the objective:
#        PASS (exit 0).
#  off:  the negative control: failover off and the fault turned into a crash loop (interval:
#        the restarted service is killed again), so east never comes back during the fault:
#        FAIL (exit 1); after the revert the supervisor restarts it and the service is healthy.
# Usage: process_crash_test.sh BIN_DIR auto|off
# shellcheck disable=SC2154  # rc: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?auto|off}"
EXP="$ROOT/experiments/db-process-crash.yaml"
KV_PIDFILE="$SANDBOX_RUN/pids/kv-east-service.pid"

sandbox_up --failover "$mode"
kv_before=$(cat "$KV_PIDFILE")
kv_west=$(cat "$SANDBOX_RUN/pids/kv-west-service.pid")
[ "$(cat /proc/"$kv_before"/comm)" = "faultline-sampl" ] || fail "pidfile does not name the kv service"
if [ "$mode" = off ]; then
  sed 's/signal: SIGKILL}/signal: SIGKILL, interval: 250ms}/' "$EXP" >"$WORK/crash-loop.yaml"
  grep -q 'interval: 250ms' "$WORK/crash-loop.yaml" || fail "could not make the crash-loop variant"
  EXP="$WORK/crash-loop.yaml"
fi
run_experiment "$EXP"
[ "$(ev processes_signalled)" -ge 1 ] || fail "no process signalled: $(jq -c '.faults[0].agents[0].evidence' "$R")"
[ "$(ev restarts_observed)" -ge 1 ] || fail "the supervisor's restart was not observed: $(jq -c '.faults[0].agents[0].evidence' "$R")"
kill -0 "$kv_before" 2>/dev/null && fail "the original kv process $kv_before is still alive"
# Same program, other host (network namespace): the east agent must not have touched it.
[ "$(cat "$SANDBOX_RUN/pids/kv-west-service.pid")" = "$kv_west" ] && kill -0 "$kv_west" ||
  fail "the us-west-2 kv service (another host) was killed too"
# The supervisor restarts east after the run (crash loop or not): the restart was not prevented.
await 10 bash -c "[ -s '$KV_PIDFILE' ] && [ \"\$(cat '$KV_PIDFILE')\" != '$kv_before' ] && kill -0 \"\$(cat '$KV_PIDFILE')\"" ||
  fail "the kv service was not restarted by its supervisor"
await 10 curl -sf --max-time 1 http://10.77.0.20:8000/healthz >/dev/null ||
  fail "the restarted kv service does not answer"
[ "$(jq -r '.objectives[] | select(.after == "revert") | .verdict' "$R")" = PASS ] ||
  fail "the service should be healthy again after the revert"
if [ "$mode" = auto ]; then
  [ "$(ev processes_matched)" -eq 1 ] && [ "$(ev processes_signalled)" -eq 1 ] ||
    fail "one kv process on fl-db-east should match and be killed: $(jq -c '.faults[0].agents[0].evidence' "$R")"
  [ $rc -eq 0 ] || fail "db-process-crash: expected PASS (0) with failover and restart, got $rc"
  pass "db-process-crash: PASS, $(ev processes_signalled) signalled, $(ev restarts_observed) restart(s) observed"
else
  [ $rc -eq 1 ] || fail "db-process-crash (crash loop, no failover): expected FAIL (1), got $rc"
  [ "$(jq -r '[.objectives[] | select(.after == "inject") | .verdict] | first' "$R")" = FAIL ] ||
    fail "the during-fault objective should FAIL in a crash loop without failover"
  [ "$(ev processes_signalled)" -ge 2 ] || fail "the crash loop should have killed the restarted service too"
  pass "db-process-crash crash loop without failover: FAIL (negative control)"
fi
