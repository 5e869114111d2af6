#!/usr/bin/env bash
# Measurement against a service whose failing requests are slow (issue 15): the orders service
# holds every failure 1.5 s (six probe intervals) before answering 503. The experiment PASSes, the
# probe kept sending on schedule while failures were outstanding (open-loop), and the reported
# recovery bracket contains the service's own logged failover instant.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

sandbox_up --failover auto --orders-fail-delay-ms 1500
set +e
"$BIN/faultline" run "$ROOT/tests/integration/testdata/slow-failures.yaml" \
  --report-json "$WORK/report.json" --report-junit "$WORK/junit.xml" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
R="$WORK/report.json"
[ -f "$R" ] || fail "no JSON report written"
[ $rc -eq 0 ] || fail "expected exit 0 (PASS), got $rc"
# The failures really were slow, and the probe did not wait for them: some sample was sent while
# a slow failure sent before it was still unanswered.
jq -e '[.probes[0].samples[] | select(.ok | not) | .latency_ms] | max >= 1400' "$R" >/dev/null ||
  fail "no failing sample took the service's 1.5 s fail delay"
jq -e '.probes[0].samples as $s | [range(1; $s | length) |
       select($s[.].t_s < $s[. - 1].answered_s and ($s[. - 1].ok | not))] | length > 0' "$R" \
  >/dev/null || fail "no sample was sent while a slow failure was outstanding (not open-loop)"
expect_failover_in_bracket "$R" automated-failover
xmllint --noout --schema "$ROOT/tests/unit/controller/report/junit.xsd" "$WORK/junit.xml" ||
  fail "the JUnit report does not validate"
grep -q 'objective.automated-failover.time_to_recover_bracket_s' "$WORK/junit.xml" ||
  fail "the JUnit report does not carry the recovery bracket"
pass "slow failures: the recovery bracket contains the logged failover"
