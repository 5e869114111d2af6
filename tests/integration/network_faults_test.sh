#!/usr/bin/env bash
# Network faults from real traffic between sandbox hosts: reject = connection refused, blackhole =
# timeout, port filter (another port still connects), latency = slow; the agent's control traffic survives a
# full blackhole; kill -9 of the agent while the delay line holds packets lets traffic flow again
# within a second and the restarted agent leaves no rule behind; the two example experiments PASS
# with automated failover; and `nft list ruleset` / `tc qdisc show` are unchanged afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
ROOT_EXP="$ROOT/experiments"
KV=http://10.77.0.20:8000/

# Writes an experiment with one network fault on fl-app (the YAML mapping in $2), $3 long.
experiment() {
  cat >"$WORK/$1.yaml" <<EOI
apiVersion: faultline/v1
kind: Experiment
metadata: {name: $1}
targets:
  app: {selector: {role: app}}
faults:
  - {name: f, target: app, network: $2, duration: ${3:-6s}}
probes:
  - name: orders-api
    http: {url: "http://10.77.0.10:8080/orders/42", timeout: 1s}
    interval: 250ms
objectives:
  - {name: o, probe: orders-api, recover_within: 1m}
EOI
}
# Starts experiment $1 in the background and waits until its table is in fl-app.
start_run() {
  "$BIN/faultline" run "$WORK/$1.yaml" --quiet --report-json "$WORK/$1.json" >"$WORK/$1.log" 2>&1 &
  run_pid=$!
  await 20 has_fault_table fl-app || { cat "$WORK/$1.log"; fail "$1: fault never applied"; }
}
finish_run() { wait "$run_pid" || true; await 5 no_fault_table fl-app || fail "$1: table left behind"; }
app_curl() { ip netns exec fl-app curl -s -o /dev/null -m "$1" -w '%{time_total}' "$KV"; }

sandbox_up --failover auto
ruleset_before=$(ip netns exec fl-app nft list ruleset)
qdisc_before=$(ip netns exec fl-app tc qdisc show)

# Reject: connection refused at once (curl exit 7), blackhole: timeout (curl exit 28).
experiment reject '{reject: {}, match: {protocol: tcp, cidrs: [10.77.0.20], remote_ports: [8000]}}'
start_run reject
set +e; app_curl 2 >/dev/null; rc=$?; set -e
[ $rc -eq 7 ] || fail "reject: expected connection refused (curl 7), got curl exit $rc"
finish_run reject
jq -e '.faults[0].agents[0].evidence.packets_rejected > 0' "$WORK/reject.json" >/dev/null ||
  fail "reject: no packets_rejected evidence"
pass "reject: connection refused, evidence $(jq -c .faults[0].agents[0].evidence "$WORK/reject.json")"

experiment blackhole '{blackhole: {}, match: {protocol: tcp, cidrs: [10.77.0.20], remote_ports: [8000]}}'
start_run blackhole
set +e; app_curl 1 >/dev/null; rc=$?; set -e
[ $rc -eq 28 ] || fail "blackhole: expected a timeout (curl 28), got curl exit $rc"
# Port filter: only port 8000 is cut; another port of the same host (its agent) still connects.
set +e; ip netns exec fl-app curl -s -o /dev/null -m 1 http://10.77.0.20:7070/; rc=$?; set -e
[ $rc -ne 28 ] && [ $rc -ne 7 ] || fail "blackhole on port 8000 also cut port 7070 (curl exit $rc)"
finish_run blackhole
pass "blackhole: timeout on port 8000, port 7070 of the same host unaffected"

# Full blackhole of fl-app (every peer, both directions): the controller still applies, renews
# and reverts over the agent's port, and the report has the agent's evidence.
experiment full '{blackhole: {}}' 4s
"$BIN/faultline" run "$WORK/full.yaml" --quiet --report-json "$WORK/full.json" >"$WORK/full.log" 2>&1 || true
[ "$(jq -r '.faults[0].agents[0].revert_reason' "$WORK/full.json")" = request ] ||
  fail "full blackhole: fault not reverted on request: $(cat "$WORK/full.log")"
jq -e '.faults[0].agents[0].evidence.packets_dropped > 0' "$WORK/full.json" >/dev/null ||
  fail "full blackhole dropped nothing"
no_fault_table fl-app || fail "full blackhole left its table"
pass "control traffic unaffected by a full blackhole"

# Latency: the call is slow by at least the delay, and the delay line reports it.
experiment latency '{latency: {delay: 300ms}, match: {cidrs: [10.77.0.20]}}'
start_run latency
t=$(app_curl 3) || fail "latency: request failed"
jq -n -e --argjson t "$t" '$t >= 0.3' >/dev/null || fail "latency: request took ${t}s < 0.3s"
finish_run latency
jq -e '.faults[0].agents[0].evidence.packets_delayed > 0' "$WORK/latency.json" >/dev/null ||
  fail "latency: no packets_delayed evidence"
pass "latency: request took ${t}s with 300ms added"

# kill -9 of the agent while packets are held: --queue-bypass lets traffic through again.
experiment held '{latency: {delay: 5s}, match: {cidrs: [10.77.0.20]}}' 30s
start_run held
agent_pid=$(pgrep -f 'faultline-agent .*--name fl-app' | head -n 1)
[ -n "$agent_pid" ] || fail "cannot find the fl-app agent's pid"
mapfile -d '' agent_argv < "/proc/$agent_pid/cmdline"
ip netns exec fl-app curl -s -o /dev/null -m 10 "$KV" &  # held in the delay line
sleep 0.2  # let its SYN be queued (not a synchronisation: the assertion below holds either way)
kill -9 "$agent_pid"
killed_at=$(now_ns)
await 1 app_curl 0.5 >/dev/null || fail "traffic did not flow within 1s of kill -9"
echo "traffic flowing again $(( ($(now_ns) - killed_at) / 1000000 )) ms after kill -9"
ip netns exec fl-app iptables -w -t raw -S | grep -q faultline_ || fail "expected the NFQUEUE rule to outlive the agent"
args=(); skip=0
for a in "${agent_argv[@]}"; do
  if [ $skip -eq 1 ]; then skip=0; continue; fi
  if [ "$a" = --ready-file ]; then skip=1; continue; fi
  args+=("$a")
done
ip netns exec fl-app setsid "${args[@]}" --ready-file "$WORK/agent.ready" >"$WORK/agent-restart.log" 2>&1 &
await 20 test -f "$WORK/agent.ready" || { cat "$WORK/agent-restart.log"; fail "agent restart"; }
no_fault_table fl-app || fail "restarted agent left $(fault_tables fl-app)"
if ip netns exec fl-app iptables -w -t raw -S | grep -q faultline_; then fail "NFQUEUE rule left after restart"; fi
# Nothing more to see in this run (its 30s fault is gone with the agent): end it as Ctrl-C would
# instead of waiting out its duration.
kill -TERM "$run_pid" 2>/dev/null || true
wait "$run_pid" || true
pass "kill -9 with packets held: traffic flows again, restart sweeps table and NFQUEUE rule"

[ "$(ip netns exec fl-app nft list ruleset)" = "$ruleset_before" ] || {
  diff <(echo "$ruleset_before") <(ip netns exec fl-app nft list ruleset) >&2; fail "nft ruleset residue"; }
[ "$(ip netns exec fl-app tc qdisc show)" = "$qdisc_before" ] || fail "tc qdisc residue"
pass "no residue in nft ruleset or tc qdiscs"

# The example experiments, each on a fresh sandbox (the service fails over once per life).
for exp in region-partition dependency-latency; do
  sandbox_up --failover auto
  set +e
  "$BIN/faultline" run "$ROOT_EXP/$exp.yaml" --quiet --report-json "$WORK/$exp.json" >"$WORK/$exp.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 0 ] || { cat "$WORK/$exp.log"; fail "$exp: expected PASS (exit 0), got $rc"; }
  echo "$exp: $(jq -c '[.objectives[] | {name, time_to_recover_s}], .faults[0].agents[0].evidence' "$WORK/$exp.json")"
  no_fault_table fl-app || fail "$exp left its table"
  pass "$exp PASS with automated failover"
done
