#!/usr/bin/env bash
# The agent's Prometheus endpoint during a real fault: scrape fl-app's agent (the sandbox starts
# every agent with --metrics-listen HOST:9464) while the flagship's DNS fault is active. At rest
# active faults = 0; during the fault active faults = 1 and the fault's queries_faulted evidence
# counter rises as the orders service keeps resolving; after the run the fault is counted as
# applied and reverted (reason request) and its evidence series is gone. Only GET /metrics is
# served. Then `faultline run --metrics-file` wrote the run's verdict for the textfile collector.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
URL=http://10.77.0.10:9464/metrics

scrape() { curl -fsS --max-time 2 "$URL"; }
value() {  # metric-with-labels-prefix → value of the first matching series
  scrape | awk -v m="$1" 'index($0, m) == 1 {print $NF; exit}'
}
active_is() { [ "$(value 'faultline_agent_active_faults ')" = "$1" ]; }
evidence() { value 'faultline_agent_fault_evidence_total{' ; }
queries_faulted() {
  scrape | awk '/^faultline_agent_fault_evidence_total\{.*counter="queries_faulted"/ {print $NF; exit}'
}
evidence_above() { local v; v="$(queries_faulted)"; [ -n "$v" ] && [ "$v" -gt "$1" ]; }

sandbox_up --failover auto
active_is 0 || fail "at rest: active faults is not 0: $(scrape | grep active_faults)"
scrape | grep -q '^faultline_agent_build_info{agent="fl-app",version="' || fail "no build info"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://10.77.0.10:9464/)" = 404 ] || fail "/ is served"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$URL")" = 405 ] || fail "POST is accepted"

"$BIN/faultline" run "$FLAGSHIP" --quiet --metrics-file "$WORK/run.prom" >"$WORK/run.log" 2>&1 &
run_pid=$!
await 30 active_is 1 || { cat "$WORK/run.log"; fail "active faults never became 1 during the run"; }
await 10 evidence_above 0 || fail "no queries_faulted evidence while the fault is active: $(scrape | grep evidence)"
first="$(queries_faulted)"
await 10 evidence_above "$first" || fail "queries_faulted did not rise above $first during the fault"
pass "during the fault: active faults 1, queries_faulted rose from $first to $(queries_faulted)"
scrape | grep -q 'faultline_agent_fault_evidence_total{fault_id="[a-z0-9_]*",run_id="[a-z0-9]*",kind="dns",counter="queries_faulted"}' ||
  fail "evidence series lacks fault_id/run_id/kind/counter labels"

wait "$run_pid" || { cat "$WORK/run.log"; fail "the flagship run did not PASS"; }
active_is 0 || fail "after the run: active faults is not 0"
[ "$(value 'faultline_agent_faults_applied_total{kind="dns"}')" = 1 ] || fail "applied_total{dns} != 1"
[ "$(value 'faultline_agent_faults_reverted_total{kind="dns",reason="request"}')" = 1 ] ||
  fail "reverted_total{dns,request} != 1: $(scrape | grep reverted)"
[ -z "$(evidence)" ] || fail "evidence of a reverted fault is still exported"
pass "after the run: applied 1, reverted 1 (request), no evidence series left"

grep -q '^faultline_run_verdict{experiment="dynamodb-dns-failover",verdict="PASS"} 1$' "$WORK/run.prom" ||
  fail "--metrics-file lacks the PASS verdict: $(cat "$WORK/run.prom")"
grep -qE '^faultline_objective_time_to_recover_seconds\{experiment="dynamodb-dns-failover",objective="automated-failover"\} [0-9.]+$' "$WORK/run.prom" ||
  fail "--metrics-file lacks the time to recover"
pass "agent metrics follow the fault; run metrics file holds verdict and time to recover"
