#!/usr/bin/env bash
# An invalid experiment file: exit 2, the error names file:line:column and the field, and nothing
# is applied on any host.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
BAD="$ROOT/tests/integration/testdata/invalid-mode.yaml"

sandbox_up --failover auto
set +e
"$BIN/faultline" run "$BAD" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt"
[ $rc -eq 2 ] || fail "expected exit 2 for an invalid file, got $rc"
grep -q "invalid-mode.yaml:14:[0-9]*: faults\[0\].dns.mode" "$WORK/err.txt" ||
  fail "error does not name file:line:column and the field"
for h in fl-app fl-dns fl-db-east fl-db-west; do
  no_fault_table "$h" || fail "something was applied on $h"
done
agents=$("$BIN/faultline" agents --output json)
[ "$(jq '[.[].active_faults] | add' <<<"$agents")" = 0 ] || fail "an agent reports active faults"
set +e
"$BIN/faultline" validate "$BAD" 2>/dev/null
vrc=$?
set -e
[ $vrc -eq 2 ] || fail "validate should exit 2, got $vrc"
pass "invalid input rejected with exit 2, nothing applied"
