#!/usr/bin/env bash
# kill -9 of the agent mid-fault: its table stays in the kernel (the agent could not revert) but
# lapses by itself (dead-man switch), and the restarted agent deletes it from its journal before
# serving. The run that lost track of its
# fault must not claim a recovery: it ends ERROR (exit 4).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

sandbox_up --failover auto
"$BIN/faultline" run "$FLAGSHIP" --lease-ttl 15s --quiet --report-json "$WORK/report.json" \
  >"$WORK/run.log" 2>&1 &
run_pid=$!
await 30 has_fault_table fl-app || { cat "$WORK/run.log"; fail "the fault was never applied"; }

kill9_agent fl-app
has_fault_table fl-app || fail "the table vanished with the agent: nothing left to recover"
await 20 east_resolves || fail "the fault did not lapse while its agent is down"

restart_agent fl-app "$WORK/agent.ready" "$WORK/agent-restart.log"
no_fault_table fl-app || fail "restarted agent did not revert the journaled fault: $(fault_tables fl-app)"
await 2 east_resolves || fail "east endpoint does not resolve after the journal revert"
grep -qi "journal" "$WORK/agent-restart.log" || fail "restarted agent did not log the journal revert"
pass "journal reverted the fault on agent restart"

set +e
wait "$run_pid"
rc=$?
set -e
cat "$WORK/run.log"
[ $rc -eq 4 ] || fail "run whose agent crashed should end ERROR (exit 4), got $rc"
[ "$(jq -r .verdict "$WORK/report.json")" = ERROR ] || fail "verdict should be ERROR"
pass "run ended ERROR, claiming no recovery"
