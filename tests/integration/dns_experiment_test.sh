#!/usr/bin/env bash
# A DNS experiment from experiments/, run as a user would, both ways: with the orders service's
# automated failover it must PASS (exit 0); with failover off (the negative control) it must FAIL
# (exit 1). Either way the fault must have bitten (evidence) and left nothing behind.
# Usage: dns_experiment_test.sh BIN_DIR EXPERIMENT_NAME auto|off
# shellcheck disable=SC2154  # rc: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
name="${2:?experiment name}"
mode="${3:?auto|off}"
EXP="$ROOT/experiments/$name.yaml"

sandbox_up --failover "$mode"
run_experiment "$EXP"
expect_dns_fault_bit_and_reverted
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
