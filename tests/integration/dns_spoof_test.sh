#!/usr/bin/env bash
# experiments/dns-spoofed-endpoint.yaml, both ways, with real clients in fl-app while it runs:
# dig (UDP and TCP) gets the spoofed A and AAAA records for the east endpoint, while the west
# endpoint's answer is byte-for-byte what fl-dns's dnsmasq gives directly (same dig +noall output,
# transaction flags included). With --failover auto the run PASSes; with off it FAILs. The report
# carries the fault's per-mode evidence (queries_seen/faulted/passed).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?auto|off}"
EXP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/experiments/dns-spoofed-endpoint.yaml"
EAST=dynamodb.us-east-1.sandbox.test
WEST=dynamodb.us-west-2.sandbox.test

sandbox_up --failover "$mode"
set +e
"$BIN/faultline" run "$EXP" --report-json "$WORK/report.json" >"$WORK/out.txt" 2>"$WORK/err.txt" &
run=$!
set -e
spoofed() { [ "$(ip netns exec fl-app dig +short +time=1 +tries=1 $EAST A)" = 10.77.0.250 ]; }
await 30 spoofed || { kill $run; fail "east endpoint never resolved to the spoofed address"; }
[ "$(ip netns exec fl-app dig +short +tcp +time=1 +tries=1 $EAST A)" = 10.77.0.250 ] ||
  fail "spoof over TCP"
[ "$(ip netns exec fl-app dig +short +time=1 +tries=1 $EAST AAAA)" = fd00:77::250 ] ||
  fail "spoofed AAAA"
# Pass-through: same answer as asking fl-dns's dnsmasq from fl-dns itself (no interceptor there).
q() { ip netns exec "$1" dig +noall +answer +comments +nocookie +time=1 +tries=1 @10.77.0.2 $WEST A | grep -v -e '^;; Query time' -e 'id:' ; }
[ "$(q fl-app)" = "$(q fl-dns)" ] || fail "west answer through the interceptor differs: $(q fl-app) vs $(q fl-dns)"
set +e; wait $run; rc=$?; set -e
cat "$WORK/err.txt" "$WORK/out.txt"
R="$WORK/report.json"
[ -f "$R" ] || fail "no JSON report"
jq -e '.faults[0].agents[0].evidence.queries_faulted_spoof > 0 and
       .faults[0].agents[0].evidence.queries_seen >= .faults[0].agents[0].evidence.queries_faulted' \
  "$R" >/dev/null || fail "evidence lacks spoofed queries: $(jq -c '.faults[0].agents[0].evidence' "$R")"
no_fault_table fl-app || fail "fault table left behind"
east_resolves || fail "east endpoint does not resolve after the run"
if [ "$mode" = auto ]; then
  [ $rc -eq 0 ] || fail "expected PASS (0) with failover, got $rc"
  pass "spoofed endpoint: PASS with automated failover"
else
  [ $rc -eq 1 ] || fail "expected FAIL (1) without failover, got $rc"
  pass "spoofed endpoint: FAIL without failover (negative control)"
fi
