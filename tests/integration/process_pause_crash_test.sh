#!/usr/bin/env bash
# Pause of the kv service on fl-db-east (SIGSTOP, selected by pidfile), then kill -9 of that
# host's agent mid-fault: the pause's guard process (faultline-agent --guard, watching the agent's
# pidfd) continues exactly that process and removes its pause record, with no restart; the
# restarted agent then finds nothing left to continue and serves. The run that lost track of its
# fault ends ERROR (exit 4).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
KV_PIDFILE="$SANDBOX_RUN/pids/kv-east-service.pid"
HOST=fl-db-east

sandbox_up --failover auto
kv=$(cat "$KV_PIDFILE")
kv_state() { awk '{print $3}' "/proc/$kv/stat"; }
kv_stopped() { [ "$(kv_state)" = T ]; }
kv_running() { [ "$(kv_state)" != T ]; }

"$BIN/faultline" run "$ROOT/tests/integration/testdata/process-pause.yaml" --lease-ttl 15s \
  --quiet --report-json "$WORK/report.json" >"$WORK/run.log" 2>&1 &
run_pid=$!
await 30 kv_stopped || { cat "$WORK/run.log"; fail "the kv service was never paused"; }
pass "pause: kv pid $kv stopped (SIGSTOP)"
curl -s --max-time 1 http://10.77.0.20:8000/healthz >/dev/null && fail "a paused kv service answered"

kill9_agent $HOST
await 20 kv_running || fail "the guard did not continue the kv service after its agent died"
[ "$(cat "$KV_PIDFILE")" = "$kv" ] || fail "the kv service was restarted instead of continued"
await 5 test ! -e "$SANDBOX_RUN/state/$HOST/process/"*.paused ||
  fail "the guard did not remove the pause record"
pass "guard: kv pid $kv continued after kill -9 of its agent, no restart"

restart_agent $HOST "$WORK/agent.ready" "$WORK/agent-restart.log"
kv_running || fail "the kv service is stopped again after the agent restart (state $(kv_state))"
[ "$(cat "$KV_PIDFILE")" = "$kv" ] || fail "the kv service was restarted instead of continued"
grep -q "reason=journal" "$WORK/agent-restart.log" || fail "restarted agent did not log the journal revert"
await 5 curl -sf --max-time 1 http://10.77.0.20:8000/healthz >/dev/null ||
  fail "the continued kv service does not answer"
pass "journal: the restarted agent reverted the (already continued) fault"

set +e
wait "$run_pid"
rc=$?
set -e
cat "$WORK/run.log"
[ $rc -eq 4 ] || fail "run whose agent crashed should end ERROR (exit 4), got $rc"
pass "run ended ERROR, claiming no recovery"
