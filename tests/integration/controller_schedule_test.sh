#!/usr/bin/env bash
# Scheduled game days with two faultline-controllers sharing one real PostgreSQL (the unit tests'
# throw-away server, faultline-test-postgres), each with one real agent in a scratch namespace
# (cs-h1 attached to ctl-a, cs-h2 to ctl-b; mTLS with development certificates):
#   1. a schedule whose due time is owed now fires exactly once across both controllers (one run,
#      one "started" firing in the store), through `faultline schedule ... --controller`;
#   2. kill -9 of the controller running it: the other marks the run INTERRUPTED (presence lease
#      expiry, seen by its scheduling tick) and the fault's nft table is gone after its lease;
#   3. halt: the running scheduled run ends ABORTED, the next due time is recorded
#      skipped:halted (while a due time before the halt started: the control), the controller's
#      /metrics says faultline_controller_halted 1, and a controller started during the halt
#      honours it (recorded in the store); resume lifts it everywhere (metrics 0) and a due time
#      starts again;
#   4. history, report (text, json, html, junit) and annotate through --controller.
# "Owed now" without waiting for a minute boundary: a schedule at the last minute boundary
# (cron "M H * * *"), whose creation time is then moved one minute back in the store, so that
# boundary is its one due time (within --schedule-start-deadline).
# Does not use the sandbox (its own cs-* namespaces), but takes its lock like every integration
# test: two runs of this test (two worktrees, two CI jobs on one host) would share those names.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
source "$(dirname "${BASH_SOURCE[0]}")/scratch.sh"
WORK="$(mktemp -d /tmp/cs-it.XXXXXX)"
PG_PORT=15760
declare -A PORT=([ctl-a]=15801 [ctl-b]=15802)
declare -A METRICS=([ctl-a]=127.0.0.1:15811 [ctl-b]=127.0.0.1:15812)
declare -A HOST=([ctl-a]=cs-h1 [ctl-b]=cs-h2)
declare -A ROOT_IP=([cs-h1]=10.218.60.1 [cs-h2]=10.218.60.5)
declare -A HOST_IP=([cs-h1]=10.218.60.2 [cs-h2]=10.218.60.6)
declare -A PID=()
LEASE=2s  # faults of scheduled runs
PG_PID=""
AGENT_PIDS=()


cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/*.log; do echo "--- $f (tail)"; tail -n 30 "$f"; done >&2
  fi
  # SIGTERM: a controller cancels its runs and reverts their faults on the way out.
  for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${AGENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${AGENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$PG_PID" ] && { kill "$PG_PID" 2>/dev/null; wait "$PG_PID" 2>/dev/null; } || true
  for h in cs-h1 cs-h2; do
    ip netns del "$h" 2>/dev/null || true
    ip link del "${h/cs-h/cs-r}" 2>/dev/null || true
  done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT


# --- PostgreSQL, hosts, certificates, controllers, agents ---------------------------------------
"$BIN/faultline-test-postgres" "$PG_PORT" faultline >"$WORK/pg.url" 2>"$WORK/postgres.log" &
PG_PID=$!
# Bounded by the helper itself (initdb, then readiness): it prints the URL or exits.
pg_settled() { [ -s "$WORK/pg.url" ] || ! kill -0 "$PG_PID" 2>/dev/null; }
await 200 pg_settled && [ -s "$WORK/pg.url" ] || fail "PostgreSQL did not start"
STORE=$(cat "$WORK/pg.url")
sql() { psql "$STORE" -qtAX -c "$1"; }

for h in cs-h1 cs-h2; do
  r="${h/cs-h/cs-r}"
  scratch_host "$h" "$r" "${ROOT_IP[$h]}" "${HOST_IP[$h]}"
done
CERTS="$WORK/certs"
# One certificate per agent: the controller registers an agent under its certificate's id.
"$BIN/faultline" certs init "$CERTS" --san 10.218.60.1 --san 10.218.60.5 --agent cs-h1 \
  --agent cs-h2 >/dev/null
OP=(--tls-dir "$CERTS")
addr() { echo "10.218.60.1:${PORT[$1]}"; }

start_controller() {  # start_controller ID
  rm -f "$WORK/$1.ready"
  "$BIN/faultline-controller" --listen "0.0.0.0:${PORT[$1]}" --id "$1" --store "$STORE" \
    --heartbeat 200ms --fanout-deadline 3s --lease-ttl "$LEASE" --schedule-tick 300ms \
    --schedule-lease 2s --schedule-start-deadline 5m --metrics-listen "${METRICS[$1]}" \
    --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/controller.pem" \
    --tls-key "$CERTS/controller-key.pem" --ready-file "$WORK/$1.ready" \
    --allow-command-probe true >>"$WORK/$1.log" 2>&1 &
  PID[$1]=$!
  await 30 test -s "$WORK/$1.ready" || fail "controller $1 did not start"
}
start_controller ctl-a
start_controller ctl-b
for c in ctl-a ctl-b; do
  h=${HOST[$c]}
  ip netns exec "$h" "$BIN/faultline-agent" --controller "${ROOT_IP[$h]}:${PORT[$c]}" --name "$h" \
    --label role=db --state-dir "$WORK/state-$h" --tls-ca "$CERTS/ca.pem" \
    --tls-cert "$CERTS/agent-$h.pem" --tls-key "$CERTS/agent-$h-key.pem" \
    --controller-max-backoff 300ms --max-lease-ttl 1m >"$WORK/agent-$h.log" 2>&1 &
  AGENT_PIDS+=($!)
done
live() {
  [ "$("$BIN/faultline" agents --controller "$(addr "$1")" "${OP[@]}" --output json 2>/dev/null |
    jq '[.[] | select(.live)] | length')" = 1 ]
}
await 60 live ctl-a && await 60 live ctl-b || fail "agents did not attach"

cat >"$WORK/gameday.yaml" <<EOF
apiVersion: faultline/v1
kind: Experiment
metadata: {name: gameday}
targets:
  db: {selector: {role: db}, mode: all}
faults:
  - name: blackhole-testnet
    target: db
    network: {blackhole: {}, match: {cidrs: ["192.0.2.1"]}}
    duration: 5m
probes:
  - name: always
    command: {argv: ["true"]}
    interval: 100ms
steady_state: {probes: [always], for: 100ms}
objectives:
  - {name: available, probe: always, recover_within: 1m, stable_for: 100ms}
EOF

# add_owed NAME CONTROLLER: a schedule whose one due time (the last minute boundary) is owed now.
add_owed() {
  local boundary=$(( $(date +%s) / 60 * 60 ))
  "$BIN/faultline" schedule add "$1" -f "$WORK/gameday.yaml" --controller "$(addr "$2")" "${OP[@]}" \
    --cron "$(date -u -d "@$boundary" +'%-M %-H') * * *" >>"$WORK/cli.log" 2>&1 ||
    fail "schedule add $1: $(tail -3 "$WORK/cli.log")"
  [ "$(sql "UPDATE faultline_schedules SET created_unix_ms = $(( (boundary - 60) * 1000 ))
            WHERE name = '$1' RETURNING name")" = "$1" ] || fail "schedule $1 is not in the store"
}
firings_json() { "$BIN/faultline" schedule firings "$1" --controller "$(addr "$2")" "${OP[@]}" --output json; }
firing_outcome() { firings_json "$1" "$2" | jq -r '.[0].outcome // empty'; }
recorded() { [ -n "$(firing_outcome "$1" "$2")" ] && { [ "$(firing_outcome "$1" "$2")" != started ] || [ -n "$(firings_json "$1" "$2" | jq -r '.[0].run_id')" ]; }; }
run_state() { sql "SELECT state FROM faultline_runs WHERE id = '$1'"; }
presence_after() {  # presence_after CONTROLLER MS: it renewed its presence after MS
  [ "$(sql "SELECT count(*) FROM faultline_leases WHERE name = 'presence:$1'
            AND expires_unix_ms > $2 + 2000")" = 1 ]
}
halted_metric() { curl -sf "http://${METRICS[$1]}/metrics" | awk '$1 == "faultline_controller_halted" {print $2}'; }

# Bad input is refused by the controller, naming the field, and changes nothing.
set +e
"$BIN/faultline" schedule add bad -f "$WORK/gameday.yaml" --cron "0 25 * * *" \
  --controller "$(addr ctl-a)" "${OP[@]}" >"$WORK/bad.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "hour" "$WORK/bad.log" || fail "an invalid cron was not refused: $(cat "$WORK/bad.log")"
[ "$(sql "SELECT count(*) FROM faultline_schedules")" = 0 ] || fail "a refused schedule was stored"
pass "an invalid schedule is refused by the controller (exit 2, field named), nothing stored"

# --- 1. fires exactly once across both controllers ----------------------------------------------
add_owed gameday ctl-a
await 30 recorded gameday ctl-b || fail "the owed due time was not decided: $(firings_json gameday ctl-b)"
[ "$(firing_outcome gameday ctl-b)" = started ] || fail "gameday: $(firings_json gameday ctl-b)"
fired_at=$(( $(date +%s%N) / 1000000 ))
# Both controllers have ticked since (each renews its presence every tick): neither starts it again.
await 20 presence_after ctl-a "$fired_at" && await 20 presence_after ctl-b "$fired_at" ||
  fail "the controllers stopped ticking"
[ "$(sql "SELECT count(*) FROM faultline_runs WHERE source = 'schedule:gameday'")" = 1 ] ||
  fail "not one run: $(sql "SELECT id, owner FROM faultline_runs")"
[ "$(sql "SELECT count(*) FROM faultline_firings WHERE schedule = 'gameday'")" = 1 ] &&
  [ "$(sql "SELECT count(*) FROM faultline_firings WHERE outcome = 'started'")" = 1 ] ||
  fail "not one started firing: $(sql "SELECT * FROM faultline_firings")"
RUN1=$(sql "SELECT id FROM faultline_runs WHERE source = 'schedule:gameday'")
OWNER=$(sql "SELECT owner FROM faultline_runs WHERE id = '$RUN1'")
SURVIVOR=$([ "$OWNER" = ctl-a ] && echo ctl-b || echo ctl-a)
[ "$(sql "SELECT holder FROM faultline_firings WHERE schedule = 'gameday'")" = "$OWNER" ] ||
  fail "the firing's controller is not the run's owner"
pass "the owed due time fired once across two controllers: run $RUN1 on $OWNER"

# --- 2. kill -9 of the controller running it ----------------------------------------------------
await 30 has_fault_table "${HOST[$OWNER]}" || fail "the scheduled run never applied its fault"
[ "$(run_state "$RUN1")" = running ] || fail "run $RUN1 is $(run_state "$RUN1") while $OWNER lives"
kill -9 "${PID[$OWNER]}"
wait "${PID[$OWNER]}" 2>/dev/null || true
unset "PID[$OWNER]"
# The fault: gone by its lease ($LEASE; the deadline leaves room for a loaded machine).
await 10 no_fault_table "${HOST[$OWNER]}" ||
  fail "the fault outlived the killed controller's lease: $(fault_tables "${HOST[$OWNER]}")"
# The run: the survivor takes the scheduling lease and, once $OWNER's presence lapses, marks it.
interrupted() { [ "$(run_state "$RUN1")" = interrupted ]; }
await 30 interrupted || fail "run $RUN1 is $(run_state "$RUN1") after its controller was killed"
grep -q "marked interrupted" "$WORK/$SURVIVOR.log" || fail "$SURVIVOR did not say it marked the run"
"$BIN/faultline" history --controller "$(addr "$SURVIVOR")" "${OP[@]}" --output json >"$WORK/history.json"
[ "$(jq -r --arg id "$RUN1" '.[] | select(.run_id == $id) | "\(.state) \(.source)"' "$WORK/history.json")" = \
  "interrupted schedule:gameday" ] || fail "history --controller: $(cat "$WORK/history.json")"
"$BIN/faultline" report "$RUN1" --controller "$(addr "$SURVIVOR")" "${OP[@]}" >"$WORK/run1.txt"
grep -qi interrupted "$WORK/run1.txt" || fail "report --controller: $(cat "$WORK/run1.txt")"
pass "kill -9 of $OWNER mid-run: fault gone by its lease, $SURVIVOR marked the run INTERRUPTED"

# --- 3. halt ------------------------------------------------------------------------------------
S=$SURVIVOR
[ "$(halted_metric "$S")" = 0 ] || fail "faultline_controller_halted is not 0 before the halt"
add_owed second "$S"
await 30 recorded second "$S" || fail "schedule second was not decided"
[ "$(firing_outcome second "$S")" = started ] || fail "second (not halted): $(firings_json second "$S")"
RUN2=$(firings_json second "$S" | jq -r '.[0].run_id')
await 30 has_fault_table "${HOST[$S]}" || fail "run $RUN2 never applied its fault"
"$BIN/faultline" annotate "$RUN2" "paged on-call" --author cs-test --controller "$(addr "$S")" \
  "${OP[@]}" >/dev/null || fail "annotate --controller"
"$BIN/faultline" halt --controller "$(addr "$S")" "${OP[@]}" --reason "schedule test" \
  >"$WORK/halt.log" 2>&1 || fail "halt: $(cat "$WORK/halt.log")"
grep -q "1 run(s) cancelled" "$WORK/halt.log" || fail "halt did not cancel the scheduled run: $(cat "$WORK/halt.log")"
no_fault_table "${HOST[$S]}" || fail "a fault survived the halt"
aborted() { [ "$(sql "SELECT verdict FROM faultline_runs WHERE id = '$RUN2'")" = ABORTED ]; }
await 20 aborted || fail "the halted scheduled run is not ABORTED"
[ "$(halted_metric "$S")" = 1 ] || fail "faultline_controller_halted is not 1 during the halt"
add_owed third "$S"
await 30 recorded third "$S" || fail "schedule third was not decided"
[ "$(firing_outcome third "$S")" = skipped:halted ] || fail "third (halted): $(firings_json third "$S")"
[ "$(sql "SELECT count(*) FROM faultline_runs WHERE source = 'schedule:third'")" = 0 ] ||
  fail "a run started while halted"
# A controller started during the halt honours it (the halt is in the store).
start_controller "$OWNER"
halted_1() { [ "$(halted_metric "$1")" = 1 ]; }
await 20 halted_1 "$OWNER" || fail "$OWNER, started during the halt, is not halted"
pass "halt: scheduled run ABORTED, due time recorded skipped:halted (control: started before), metrics 1, honoured by a controller started later"

"$BIN/faultline" resume --controller "$(addr "$S")" "${OP[@]}" >/dev/null || fail "resume"
halted_0() { [ "$(halted_metric "$1")" = 0 ]; }
[ "$(halted_metric "$S")" = 0 ] || fail "faultline_controller_halted is not 0 after resume"
await 20 halted_0 "$OWNER" || fail "$OWNER stayed halted after a resume on $S"
add_owed fourth "$S"
await 30 recorded fourth "$S" || fail "schedule fourth was not decided"
[ "$(firing_outcome fourth "$S")" = started ] || fail "fourth (resumed): $(firings_json fourth "$S")"
pass "resume: metrics 0 on both controllers, due times start again"

# --- 4. the halted run's report through the controller, every format ----------------------------
for f in text json html junit; do
  "$BIN/faultline" report "$RUN2" --controller "$(addr "$S")" "${OP[@]}" --format "$f" \
    >"$WORK/run2.$f" || fail "report --format $f --controller"
done
jq -e '.verdict == "ABORTED"' "$WORK/run2.json" >/dev/null || fail "json report: $(head -c 300 "$WORK/run2.json")"
jq -e '[.annotations[] | select(.text == "paged on-call")] | length == 1' "$WORK/run2.json" \
  >/dev/null || fail "the annotation is not in the report"
grep -q ABORTED "$WORK/run2.text" && grep -q "paged on-call" "$WORK/run2.html" &&
  grep -q "<testsuite" "$WORK/run2.junit" || fail "text/html/junit reports"
pass "report --controller in text, json, html and junit, with the annotation"
