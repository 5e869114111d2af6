#!/usr/bin/env bash
# The console server (issue 16) on a real sandbox run. The sandbox comes up without its own
# agents; one agent per fl-* host attaches to a faultline-controller serving the console over
# HTTPS. Two viewers watch GET /api/events with curl (a client certificate, and a viewer who is
# refused the stop button):
#   1. a short DNS fault run: the stream gains `run` events with growing sample counts, `timeline`
#      events carrying the SVG, and `run_end` with the run's verdict;
#   2. a long run stopped with POST /api/halt (the operator's certificate): every stream sees the
#      halt, the run ends ABORTED (exit 3), no faultline_* table is left in any fl-* namespace,
#      and no run starts until POST /api/resume.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
PORT=15840
CONSOLE_PORT=15841
CTL="10.77.0.1:$PORT"
HOSTS=(fl-app fl-dns fl-db-east fl-db-west)

sandbox_up --no-agents --failover auto
CERTS="$WORK/certs"
"$BIN/faultline" certs init "$CERTS" --san 10.77.0.1 --agent fl-app --agent fl-dns \
  --agent fl-db-east --agent fl-db-west >/dev/null
"$BIN/faultline-controller" --listen "10.77.0.1:$PORT" --heartbeat 200ms --store none \
  --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/controller.pem" --tls-key "$CERTS/controller-key.pem" \
  --console-listen "127.0.0.1:$CONSOLE_PORT" --ready-file "$WORK/controller.ready" \
  >"$WORK/controller.log" 2>&1 &
await 10 test -s "$WORK/controller.ready" || fail "controller did not start: $(cat "$WORK/controller.log")"
declare -A ROLE=([fl-app]=app [fl-dns]=dns [fl-db-east]=db [fl-db-west]=db)
for h in "${HOSTS[@]}"; do
  ip netns exec "$h" "$BIN/faultline-agent" --controller "$CTL" --name "$h" \
    --label "host=$h" --label "role=${ROLE[$h]}" --state-dir "$WORK/state-$h" \
    --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/agent-$h.pem" --tls-key "$CERTS/agent-$h-key.pem" \
    --controller-max-backoff 300ms >"$WORK/agent-$h.log" 2>&1 &
done

URL="https://127.0.0.1:$CONSOLE_PORT"
OPERATOR=(--cacert "$CERTS/ca.pem" --cert "$CERTS/operator.pem" --key "$CERTS/operator-key.pem")
api() { curl -sS --max-time 30 "${OPERATOR[@]}" "$@"; }
post() {  # post PATH JSON
  api -X POST -H 'X-Faultline-Console: 1' -H 'Content-Type: application/json' -d "$2" "$URL$1"
}
attached() { [ "$(api "$URL/api/fleet" | jq '[.agents[] | select(.health == "attached")] | length')" = 4 ]; }
await 15 attached || fail "agents did not attach: $(api "$URL/api/fleet")"
api "$URL/api/fleet" | jq -e '.agents[] | select(.id == "fl-app") | .labels.role == "app"' \
  >/dev/null || fail "the fleet does not show fl-app's labels"
pass "console: four sandbox agents attached, with labels, over HTTPS with a client certificate"

# Every viewer's stream, from before the runs.
curl -sSN "${OPERATOR[@]}" "$URL/api/events" >"$WORK/stream1.txt" 2>"$WORK/stream1.err" &
curl -sSN "${OPERATOR[@]}" "$URL/api/events" >"$WORK/stream2.txt" 2>"$WORK/stream2.err" &
in_stream() { grep -q -- "$2" "$WORK/$1"; }
await 10 in_stream stream1.txt '^event: hello' || fail "no hello on the event stream"
await 10 in_stream stream2.txt '^event: hello' || fail "no hello on the second stream"

experiment() {  # experiment NAME DURATION
  cat >"$WORK/$1.yaml" <<YAML
apiVersion: faultline/v1
kind: Experiment
metadata: {name: $1}
targets:
  app: {selector: {role: app}, mode: all}
faults:
  - name: dynamodb-dns
    target: app
    dns: {domains: ["dynamodb.us-east-1.sandbox.test"], mode: nodata}
    duration: $2
probes:
  - name: orders-api
    http: {url: "http://10.77.0.10:8080/orders/42", expect_status: 200, timeout: 1s}
    interval: 250ms
steady_state: {probes: [orders-api], for: 1s}
objectives:
  - {name: automated-failover, probe: orders-api, recover_within: 1m, stable_for: 1s}
YAML
  echo "$WORK/$1.yaml"
}
OPS=(--controller "$CTL" --tls-dir "$CERTS")

# --- 1. a run watched live -----------------------------------------------------------------------
SHORT=$(experiment console-short 6s)
set +e
"$BIN/faultline" run "${OPS[@]}" "$SHORT" --quiet >"$WORK/short.log" 2>&1
rc=$?
set -e
run_id=$(api "$URL/api/runs" | jq -r '.[0].run_id')
[ -n "$run_id" ] && [ "$run_id" != null ] || fail "no run in /api/runs (run exit $rc: $(cat "$WORK/short.log"))"
await 10 in_stream stream1.txt "^data: {\"run_id\":\"$run_id\",\"verdict\"" ||
  fail "no run_end for $run_id on the stream"
grep -A1 '^event: run_end' "$WORK/stream1.txt" | grep -F "\"run_id\":\"$run_id\"" >/dev/null ||
  fail "the run_end event is not the run's"
states=$(grep -A1 '^event: run$' "$WORK/stream1.txt" | grep '^data: ' | sed 's/^data: //' |
  jq -c --arg id "$run_id" 'select(.run_id == $id)')
[ "$(jq -s 'length' <<<"$states")" -ge 3 ] || fail "fewer than 3 run events for a ~10 s run"
jq -se 'map(.samples) | (.[0] < .[-1])' <<<"$states" >/dev/null ||
  fail "the live samples count did not grow: $(jq -s 'map(.samples)' <<<"$states")"
jq -se 'map(select(.phase == "fault")) | length > 0' <<<"$states" >/dev/null ||
  fail "no run event during the fault phase"
jq -se 'map(select(.faults | length > 0 and .[0].host == "fl-app")) | length > 0' <<<"$states" \
  >/dev/null || fail "the fault window on fl-app never appeared"
grep -A1 '^event: timeline' "$WORK/stream1.txt" | grep -F "\"run_id\":\"$run_id\",\"svg\":\"<svg" >/dev/null ||
  fail "no timeline SVG for the run"
cmp -s <(grep -A1 '^event: run_end' "$WORK/stream1.txt" | grep "$run_id") \
  <(grep -A1 '^event: run_end' "$WORK/stream2.txt" | grep "$run_id") ||
  fail "the two viewers did not see the same run end"
api "$URL/api/runs/$run_id" | jq -e --arg id "$run_id" '.run_id == $id and (.objectives | length == 1)' \
  >/dev/null || fail "the run's report JSON is not served"
api "$URL/api/runs/$run_id/timeline.svg" | grep -F 'id="timeline"' >/dev/null || fail "no timeline.svg"
pass "console: run $run_id streamed live ($(jq -s 'length' <<<"$states") run events, samples $(jq -s 'map(.samples) | [.[0], .[-1]]' -c <<<"$states")), run_end on both streams (exit $rc)"

# --- 2. the stop button during a run -------------------------------------------------------------
LONG=$(experiment console-long 5m)
"$BIN/faultline" run "${OPS[@]}" "$LONG" --quiet >"$WORK/long.log" 2>&1 &
run_pid=$!
await 20 has_fault_table fl-app || fail "the long run never applied its fault"
# A viewer may not stop it (a token viewer is access's; here: no credentials at all → 401).
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CERTS/ca.pem" -X POST \
  -H 'X-Faultline-Console: 1' -H 'Content-Type: application/json' -d '{"reason":"x"}' "$URL/api/halt")
[ "$code" = 401 ] || fail "an unauthenticated halt got $code"
has_fault_table fl-app || fail "a refused halt changed something"
halt=$(post /api/halt '{"reason":"console integration test"}')
jq -e '.halted == true' <<<"$halt" >/dev/null || fail "halt answered $halt"
set +e; wait "$run_pid"; rc=$?; set -e
[ $rc -eq 3 ] || fail "the halted run exited $rc, want 3 (ABORTED): $(tail -5 "$WORK/long.log")"
for s in stream1.txt stream2.txt; do
  await 10 in_stream "$s" '"halted":true' || fail "$s never saw the halt"
  await 10 in_stream "$s" '"verdict":"ABORTED"' || fail "$s never saw the run end ABORTED"
done
for h in "${HOSTS[@]}"; do
  no_fault_table "$h" || fail "fault table left in $h after the halt: $(fault_tables "$h")"
done
set +e
"$BIN/faultline" run "${OPS[@]}" "$SHORT" --quiet >"$WORK/refused.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] && no_fault_table fl-app || fail "a run started while halted"
resumed=$(post /api/resume '{}')
jq -e '.halted == false' <<<"$resumed" >/dev/null || fail "resume answered $resumed"
await 10 in_stream stream2.txt '"halted":false,"reason":"console' || fail "resume did not reach the stream"
pass "console: POST /api/halt stopped the run (ABORTED, exit 3), no fault left on any fl-* host, runs refused until resume"
