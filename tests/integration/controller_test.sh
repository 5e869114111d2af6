#!/usr/bin/env bash
# faultline-controller with real agent processes in two scratch network namespaces (cd-h1, cd-h2,
# reached over veths from the root namespace, mTLS with development certificates):
#   1. registration with labels, label selection, heartbeat loss (SIGSTOP) and return (SIGCONT);
#   2. halt during a run: every fault (real nft table) reverted, the run ends ABORTED (exit 3),
#      no run starts until resume; authorization by certificate role;
#   3. kill -9 of the controller mid-run, 20 times: every fault gone within lease TTL + 1 s.
# Does not use the sandbox (its own cd-* namespaces), but takes its lock like every integration
# test: two runs of this test (two worktrees, two CI jobs on one host) would share those names.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
source "$(dirname "${BASH_SOURCE[0]}")/scratch.sh"
WORK="$(mktemp -d /tmp/cd-it.XXXXXX)"
PORT=15810
ROUNDS=${CONTROLLER_KILL_ROUNDS:-20}
TTL_MS=1000
HOSTS=(cd-h1 cd-h2)
declare -A ROOT_IP=([cd-h1]=10.218.58.1 [cd-h2]=10.218.58.5)
declare -A HOST_IP=([cd-h1]=10.218.58.2 [cd-h2]=10.218.58.6)
declare -A LABELS=([cd-h1]="region=east" [cd-h2]="region=west")
CONTROLLER_PID=""
AGENT_PIDS=()

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/*.log; do echo "--- $f (tail)"; tail -n 25 "$f"; done >&2
  fi
  [ -n "$CONTROLLER_PID" ] && kill -9 "$CONTROLLER_PID" 2>/dev/null || true
  for p in "${AGENT_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${AGENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for h in "${HOSTS[@]}"; do
    ip netns del "$h" 2>/dev/null || true
    ip link del "${h/cd-h/cd-r}" 2>/dev/null || true
  done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

no_tables_anywhere() { no_fault_table cd-h1 && no_fault_table cd-h2; }

# --- hosts, certificates, agents ----------------------------------------------------------------
for h in "${HOSTS[@]}"; do
  r="${h/cd-h/cd-r}"
  scratch_host "$h" "$r" "${ROOT_IP[$h]}" "${HOST_IP[$h]}"
done
CERTS="$WORK/certs"
# One certificate per agent: the controller registers an agent under its certificate's id.
"$BIN/faultline" certs init "$CERTS" --san 10.218.58.1 --san 10.218.58.5 --agent cd-h1 \
  --agent cd-h2 >/dev/null
OP=(--tls-dir "$CERTS")
CTL_ADDR="10.218.58.1:$PORT"

start_controller() {
  "$BIN/faultline-controller" --listen "0.0.0.0:$PORT" --heartbeat 200ms --fanout-deadline 3s \
    --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/controller.pem" \
    --tls-key "$CERTS/controller-key.pem" --ready-file "$WORK/controller.ready" \
    --allow-command-probe true \
    >>"$WORK/controller.log" 2>&1 &
  CONTROLLER_PID=$!
  await 10 test -s "$WORK/controller.ready" || fail "controller did not start"
}

for h in "${HOSTS[@]}"; do
  ip netns exec "$h" "$BIN/faultline-agent" --controller "${ROOT_IP[$h]}:$PORT" --name "$h" \
    --label role=db --label "${LABELS[$h]}" --state-dir "$WORK/state-$h" \
    --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/agent-$h.pem" --tls-key "$CERTS/agent-$h-key.pem" \
    --controller-max-backoff 300ms --max-lease-ttl 1m >"$WORK/agent-$h.log" 2>&1 &
  AGENT_PIDS+=($!)
done
start_controller

agents_json() { "$BIN/faultline" agents --controller "$CTL_ADDR" "${OP[@]}" --output json 2>/dev/null; }
live_count() { agents_json | jq '[.[] | select(.live)] | length'; }
is_live() { [ "$(agents_json | jq -r --arg n "$1" '.[] | select(.name == $n) | .live')" = true ]; }
is_gone() { [ "$(agents_json | jq -r --arg n "$1" '.[] | select(.name == $n) | .live')" = false ]; }
both_live() { [ "$(live_count)" = 2 ]; }

# --- 1. registration, labels, heartbeat loss ----------------------------------------------------
await 15 both_live || fail "agents did not attach: $(agents_json)"
[ "$(agents_json | jq -r '.[] | select(.name == "cd-h1") | .labels.region')" = east ] ||
  fail "cd-h1's labels are not in the registry"
pass "two agents registered with their labels"

experiment() {  # experiment NAME SELECTOR DURATION
  cat >"$WORK/$1.yaml" <<EOF
apiVersion: faultline/v1
kind: Experiment
metadata: {name: $1}
targets:
  db: {selector: {$2}, mode: all}
faults:
  - name: blackhole-testnet
    target: db
    network: {blackhole: {}, match: {cidrs: ["192.0.2.1"]}}
    duration: $3
probes:
  - name: always
    command: {argv: ["true"]}
    interval: 100ms
steady_state: {probes: [always], for: 100ms}
objectives:
  - {name: available, probe: always, recover_within: 1m, stable_for: 100ms}
EOF
  echo "$WORK/$1.yaml"
}

EAST=$(experiment east "region: east" 5m)
# (Not --quiet: the log must hold the whole report, which says the fault state is unknown.)
"$BIN/faultline" run --controller "$CTL_ADDR" "${OP[@]}" "$EAST" --lease-ttl 2s \
  >"$WORK/east.log" 2>&1 &
east_pid=$!
await 15 has_fault_table cd-h1 || fail "the east run never applied its fault on cd-h1"
no_fault_table cd-h2 || fail "label selection: cd-h2 (west) got a fault"
pass "label selection: only the agent with region=east got the fault"

# Heartbeat loss: a stopped agent is dropped by the controller within 3 heartbeats. While it
# stays away longer than the run's lease, the run cannot know the fault's state: it must end,
# and never claim recovery.
kill -STOP "${AGENT_PIDS[0]}"
await 10 is_gone cd-h1 || fail "a stopped agent is still live: $(agents_json)"
is_live cd-h2 || fail "the healthy agent was dropped too"
pass "heartbeat loss: the stopped agent is gone, the other still live"
exited() { ! kill -0 "$1" 2>/dev/null; }
await 30 exited "$east_pid" || fail "the run whose agent vanished did not end"
set +e; wait "$east_pid"; rc=$?; set -e
kill -CONT "${AGENT_PIDS[0]}"
[ $rc -ne 0 ] || fail "a run whose agent vanished passed"
grep -q "unknown" "$WORK/east.log" || fail "the report does not say the fault state is unknown"
await 10 is_live cd-h1 || fail "the agent did not come back after SIGCONT"
await 3 no_fault_table cd-h1 || fail "the fault outlived the lost agent's lease"
pass "an agent lost mid-run: run exit $rc (never PASS, state unknown), fault reverted by its lease"

# --- 2. halt during a run -----------------------------------------------------------------------
ALL=$(experiment all "role: db" 5m)
"$BIN/faultline" run --controller "$CTL_ADDR" "${OP[@]}" "$ALL" --quiet --lease-ttl 10s \
  >"$WORK/halted-run.log" 2>&1 &
run_pid=$!
await 15 has_fault_table cd-h1 || fail "fault never applied on cd-h1"
await 5 has_fault_table cd-h2 || fail "fault never applied on cd-h2"
# Authorization: an agent's certificate may not halt.
set +e
"$BIN/faultline" halt --controller "$CTL_ADDR" --tls-ca "$CERTS/ca.pem" \
  --tls-cert "$CERTS/agent.pem" --tls-key "$CERTS/agent-key.pem" >"$WORK/denied.log" 2>&1
denied=$?
set -e
[ $denied -ne 0 ] && grep -q "PERMISSION_DENIED\|refused" "$WORK/denied.log" ||
  fail "an agent certificate was allowed to halt: $(cat "$WORK/denied.log")"
has_fault_table cd-h1 || fail "a refused halt changed something"
"$BIN/faultline" halt --controller "$CTL_ADDR" "${OP[@]}" --reason "integration test" \
  >"$WORK/halt.log" 2>&1 || fail "halt failed: $(cat "$WORK/halt.log")"
set +e; wait "$run_pid"; rc=$?; set -e
[ $rc -eq 3 ] || fail "the halted run exited $rc, want 3 (ABORTED): $(tail -5 "$WORK/halted-run.log")"
grep -q ABORTED "$WORK/halted-run.log" || fail "the report does not say ABORTED"
no_tables_anywhere || fail "tables left after halt: $(fault_tables cd-h1) $(fault_tables cd-h2)"
"$BIN/faultline" halt --controller "$CTL_ADDR" "${OP[@]}" >/dev/null || fail "a second halt failed"
set +e
"$BIN/faultline" run --controller "$CTL_ADDR" "${OP[@]}" "$ALL" --quiet >"$WORK/refused.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] && no_tables_anywhere || fail "a run started while halted"
"$BIN/faultline" resume --controller "$CTL_ADDR" "${OP[@]}" >/dev/null || fail "resume failed"
pass "halt: every fault reverted, run ABORTED (exit 3), idempotent, runs refused until resume"

# --- 3. kill -9 of the controller mid-run, $ROUNDS times -----------------------------------------
worst=0
for i in $(seq 1 "$ROUNDS"); do
  await 15 both_live || fail "round $i: agents did not re-attach (controller $(kill -0 "$CONTROLLER_PID" 2>/dev/null && echo alive || echo dead); $(ss -ltnp | grep ":$PORT "); $(ip netns exec cd-h1 bash -c "echo > /dev/tcp/10.218.58.1/$PORT" 2>&1 && echo tcp-ok))"
  "$BIN/faultline" run --controller "$CTL_ADDR" "${OP[@]}" "$ALL" --quiet \
    --lease-ttl "${TTL_MS}ms" >"$WORK/kill-run.log" 2>&1 &
  run_pid=$!
  await 15 has_fault_table cd-h1 || fail "round $i: fault never applied on cd-h1"
  await 5 has_fault_table cd-h2 || fail "round $i: fault never applied on cd-h2"
  kill -9 "$CONTROLLER_PID"
  killed=$(now_ms)
  wait "$CONTROLLER_PID" 2>/dev/null || true
  # Lease TTL + 1 s, checked on every host.
  await 2 no_tables_anywhere ||
    fail "round $i: faults still there $((TTL_MS + 1000)) ms after kill -9: $(fault_tables cd-h1) $(fault_tables cd-h2)"
  # When each agent reverted (its log, same clock): the figure, free of the nft polling's cost.
  for h in "${HOSTS[@]}"; do
    line=$(grep "reason=lease-expired" "$WORK/agent-$h.log" | tail -n 1)
    at=$(date -d "$(echo "$line" | cut -d' ' -f1 | tr T ' ')" +%s%3N)
    gone=$(( at - killed ))
    [ $gone -gt $worst ] && worst=$gone
  done
  wait "$run_pid" 2>/dev/null || true
  start_controller
done
pass "kill -9 of the controller mid-run x$ROUNDS: every fault gone each time (latest agent revert ${worst} ms after the kill, lease ${TTL_MS} ms)"
