#!/usr/bin/env bash
# A DNS experiment from experiments/, run as a user would, both ways: with the orders service's
# automated failover it must PASS (exit 0); with failover off (the negative control) it must FAIL
# (exit 1). Either way the fault must have bitten (evidence) and left nothing behind.
# Usage: dns_experiment_test.sh BIN_DIR EXPERIMENT_NAME auto|off
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
name="${2:?experiment name}"
mode="${3:?auto|off}"
EXP="$ROOT/experiments/$name.yaml"

sandbox_up --failover "$mode"
set +e
"$BIN/faultline" run "$EXP" --report-json "$WORK/report.json" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
R="$WORK/report.json"
[ -f "$R" ] || fail "no JSON report"
jq -e '.faults[0].agents[0].evidence.queries_faulted > 0' "$R" >/dev/null ||
  fail "the fault faulted no query: $(jq -c '.faults[0].agents[0].evidence' "$R")"
no_fault_table fl-app || fail "fault table left behind: $(fault_tables fl-app)"
east_resolves || fail "east endpoint does not resolve after the run"
[ "$(jq -r '.objectives[] | select(.after == "revert") | .verdict' "$R")" = PASS ] ||
  fail "the service should be healthy again after the revert"
if [ "$mode" = auto ]; then
  [ $rc -eq 0 ] || fail "$name: expected PASS (0) with automated failover, got $rc"
  pass "$name: PASS with automated failover"
else
  [ $rc -eq 1 ] || fail "$name: expected FAIL (1) without failover, got $rc"
  [ "$(jq -r '[.objectives[] | select(.after == "inject") | .verdict] | first' "$R")" = FAIL ] ||
    fail "$name: the during-fault objective should FAIL without failover"
  pass "$name: FAIL without failover (negative control)"
fi
