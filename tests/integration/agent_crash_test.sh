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

agent_pid=$(cat "$SANDBOX_RUN"/pids/*agent*fl-app*.pid 2>/dev/null | head -n 1)
[ -n "$agent_pid" ] || agent_pid=$(pgrep -f 'faultline-agent .*--name fl-app' | head -n 1)
[ -n "$agent_pid" ] || fail "cannot find the fl-app agent's pid"
mapfile -d '' agent_argv < "/proc/$agent_pid/cmdline"
kill -9 "$agent_pid"
while kill -0 "$agent_pid" 2>/dev/null; do sleep 0.05; done
has_fault_table fl-app || fail "the table vanished with the agent: nothing left to recover"
await 20 east_resolves || fail "the fault did not lapse while its agent is down"

ready="$WORK/agent.ready"
args=()
skip=0
for a in "${agent_argv[@]}"; do  # same command line, but our own ready file
  if [ $skip -eq 1 ]; then skip=0; continue; fi
  if [ "$a" = --ready-file ]; then skip=1; continue; fi
  args+=("$a")
done
ip netns exec fl-app setsid "${args[@]}" --ready-file "$ready" >"$WORK/agent-restart.log" 2>&1 &
await 20 test -f "$ready" || { cat "$WORK/agent-restart.log"; fail "restarted agent never became ready"; }
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
