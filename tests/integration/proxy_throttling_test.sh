#!/usr/bin/env bash
# experiments/dynamodb-throttling.yaml as a user runs it, both ways: the agent's transparent
# fault proxy answers 400/503 for 30% of the orders service's requests to the east endpoint. With
# the orders service retrying (--retries 10) it must PASS (exit 0); without retries (the negative
# control) it must FAIL (exit 1). Either way the fault must have bitten (requests_aborted), the
# application was not reconfigured (same orders process, same command line) and nothing is left.
# Usage: proxy_throttling_test.sh BIN_DIR RETRIES
# shellcheck disable=SC2154  # rc: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
retries="${2:?retries}"
EXP="$ROOT/experiments/dynamodb-throttling.yaml"

sandbox_up --failover off --retries "$retries"
orders_pid() { pgrep -f 'faultline-sample-orders .*--listen 0.0.0.0:8080' | head -n 1; }
before_pid=$(orders_pid)
before_cmd=$(tr '\0' ' ' <"/proc/$before_pid/cmdline")
run_experiment "$EXP"
[ "$(ev requests_aborted)" -gt 0 ] || fail "the proxy aborted no request: $(jq -c '.faults[0].agents[0].evidence' "$R")"
[ "$(ev connections_affected)" -gt 0 ] || fail "no connection affected"
[ "$(ev connections_redirected)" -gt 0 ] || fail "the nft redirect counted no connection"
# 30% of the requests it saw, within 5 standard deviations.
jq -e '.faults[0].agents[0].evidence as $e | ($e.requests_aborted / $e.requests_seen) as $p
       | ($p - 0.3 | fabs) <= 5 * ((0.3 * 0.7 / $e.requests_seen) | sqrt)' "$R" >/dev/null ||
  fail "abort share out of bounds: $(jq -c '.faults[0].agents[0].evidence' "$R")"
[ "$(orders_pid)" = "$before_pid" ] || fail "the orders service was restarted"
[ "$(tr '\0' ' ' <"/proc/$before_pid/cmdline")" = "$before_cmd" ] || fail "orders argv changed"
no_fault_table fl-app || fail "fault table left behind: $(fault_tables fl-app)"
[ "$(jq -r '.objectives[] | select(.after == "revert") | .verdict' "$R")" = PASS ] ||
  fail "the service should be healthy again after the revert"
if [ "$retries" -gt 0 ]; then
  [ $rc -eq 0 ] || fail "expected PASS (0) with --retries $retries, got $rc"
  pass "dynamodb-throttling: PASS with retries ($(ev requests_aborted) of $(ev requests_seen) requests aborted)"
else
  [ $rc -eq 1 ] || fail "expected FAIL (1) without retries, got $rc"
  [ "$(jq -r '[.objectives[] | select(.after == "inject") | .verdict] | first' "$R")" = FAIL ] ||
    fail "the during-fault objective should FAIL without retries"
  pass "dynamodb-throttling: FAIL without retries (negative control)"
fi
