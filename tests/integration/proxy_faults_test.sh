#!/usr/bin/env bash
# The dependency fault proxy from real clients in fl-app (curl and the orders service, neither
# reconfigured): a downstream latency toxic, an HTTP abort by path prefix, reset_peer; then kill -9
# of the agent mid-fault: the redirect lapses with it (dead-man switch) so connections go direct
# again with no restart, and the restarted agent deletes the inert tables.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

sandbox_up --failover off
"$BIN/faultline" run "$ROOT/tests/integration/testdata/proxy-toxics.yaml" --lease-ttl 15s \
  --quiet >"$WORK/run.log" 2>&1 &
run_pid=$!
two_tables() { [ "$(fault_tables fl-app | wc -l)" -eq 2 ]; }
await 30 two_tables || { cat "$WORK/run.log"; fail "the faults were never applied"; }
ip netns exec fl-app nft list ruleset >"$WORK/ruleset"
grep -q "redirect to :" "$WORK/ruleset" || fail "no redirect rule"

in_app() { ip netns exec fl-app "$@"; }
EAST=http://dynamodb.us-east-1.sandbox.test:8000
# Latency: the answer comes, no sooner than the toxic's 300 ms.
out=$(in_app curl -s -o /dev/null -w '%{http_code} %{time_total}' "$EAST/kv/orders/1")
[ "${out% *}" = 200 ] || fail "east through the proxy: $out"
awk -v t="${out#* }" 'BEGIN { exit !(t >= 0.3) }' || fail "latency toxic not applied: $out"
pass "latency toxic: 200 after ${out#* } s"
# HTTP abort by path prefix: the configured status and body, from the proxy.
body=$(in_app curl -s -w ' %{http_code}' "$EAST/kv/abort/1")
[ "$body" = "throttled by faultline 503" ] || fail "abort: got '$body'"
pass "http abort: 503 with the configured body"
# reset_peer: the client sees a reset.
set +e
in_app curl -sS -o /dev/null http://10.77.0.30:8000/kv/orders/1 2>"$WORK/reset.err"
rc=$?
set -e
# Reset at once: the client sees it while connecting (curl 7) or reading (56), never an answer.
[ $rc -eq 56 ] || [ $rc -eq 7 ] || fail "reset_peer: curl exit $rc: $(cat "$WORK/reset.err")"
pass "reset_peer: connection reset (curl exit $rc)"
# The application, unchanged, goes through the proxy too (300 ms < its 500 ms timeout).
[ "$(curl -s -o /dev/null -w '%{http_code}' http://10.77.0.10:8080/orders/42)" = 200 ] ||
  fail "orders through the latency toxic"
pass "orders service served through the proxy, not reconfigured"

# kill -9 of the agent: the redirect's table outlives it, but its rules lapse within seconds.
agent_pid=$(pgrep -f 'faultline-agent .*--name fl-app' | head -n 1)
[ -n "$agent_pid" ] || fail "cannot find the fl-app agent's pid"
mapfile -d '' agent_argv < "/proc/$agent_pid/cmdline"
kill -9 "$agent_pid"
while kill -0 "$agent_pid" 2>/dev/null; do sleep 0.05; done
two_tables || fail "the tables vanished with the agent"
await 20 in_app curl -sf -o /dev/null --max-time 1 "$EAST/kv/orders/1" ||
  fail "connections still redirected to the dead agent's proxy"
ready="$WORK/agent.ready"
args=()
skip=0
for a in "${agent_argv[@]}"; do  # same command line, our own ready file
  if [ $skip -eq 1 ]; then skip=0; continue; fi
  if [ "$a" = --ready-file ]; then skip=1; continue; fi
  args+=("$a")
done
ip netns exec fl-app setsid "${args[@]}" --ready-file "$ready" >"$WORK/agent-restart.log" 2>&1 &
await 20 test -f "$ready" || { cat "$WORK/agent-restart.log"; fail "restarted agent never ready"; }
no_fault_table fl-app || fail "restart left the redirect: $(fault_tables fl-app)"
[ "$(in_app curl -s -o /dev/null -w '%{http_code}' "$EAST/kv/abort/1")" = 200 ] ||
  fail "connections should go direct after the restart"
[ "$(in_app curl -s -o /dev/null -w '%{http_code}' http://10.77.0.30:8000/kv/orders/1)" = 200 ] ||
  fail "west should answer directly after the restart"
pass "kill -9 + restart: redirect swept, connections recover"
set +e
wait "$run_pid"
rc=$?
set -e
[ $rc -eq 4 ] || { cat "$WORK/run.log"; fail "the run that lost its agent should end ERROR (4), got $rc"; }
pass "run ended ERROR, claiming no recovery"
