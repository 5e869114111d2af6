#!/usr/bin/env bash
# The flagship, both ways. With automated failover the experiment PASSes (exit 0) and the measured
# time to recover matches the orders service's own logged failover instant within one probe
# interval + 100 ms. With failover off (the negative control) the same file FAILs (exit 1).
# Both ways the JUnit report validates and the HTML report equals the saved JSON re-rendered.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?auto|off}"

sandbox_up --failover "$mode"
set +e
HISTORY="sqlite://$WORK/history.db"
"$BIN/faultline" run "$FLAGSHIP" --report-json "$WORK/report.json" --report-junit "$WORK/junit.xml" \
  --report-html "$WORK/report.html" --history "$HISTORY" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
[ -f "$WORK/report.json" ] || fail "no JSON report written"
R="$WORK/report.json"
for f in experiment run_id verdict objectives faults probes; do
  jq -e "has(\"$f\")" "$R" >/dev/null || fail "report lacks '$f'"
done
jq -e '.faults[0].agents[0].evidence.queries_faulted > 0' "$R" >/dev/null ||
  fail "the DNS fault reported no faulted query as evidence"
# The CI and people reports of the same run: JUnit valid against the bundled schema with one
# failure per missed objective; the HTML equal to re-rendering the saved JSON.
xmllint --noout --schema "$ROOT/tests/unit/controller/report/junit.xsd" "$WORK/junit.xml" ||
  fail "the JUnit report does not validate"
want_failures=$([ "$mode" = auto ] && echo 0 || echo 1)
[ "$(grep -c '<failure ' "$WORK/junit.xml")" = "$want_failures" ] ||
  fail "JUnit report should carry $want_failures failure(s)"
"$BIN/faultline" report "$R" --format html --out "$WORK/again.html"
cmp -s "$WORK/report.html" "$WORK/again.html" || fail "run --report-html differs from report --format html"
# The recorded run, annotated afterwards: its HTML report carries the note on the timeline.
run_id=$(jq -r .run_id "$R")
"$BIN/faultline" annotate "$run_id" "pager fired" --author ana --history "$HISTORY" >/dev/null
"$BIN/faultline" report "$run_id" --format html --history "$HISTORY" --out "$WORK/stored.html"
grep -q '<g class="marker note"><title>ana: pager fired</title>' "$WORK/stored.html" ||
  fail "the annotation is not on the recorded run's timeline"
"$BIN/faultline" report "$run_id" --format junit --history "$HISTORY" --out "$WORK/stored.xml"
xmllint --noout --schema "$ROOT/tests/unit/controller/report/junit.xsd" "$WORK/stored.xml" ||
  fail "the recorded run's JUnit report does not validate"
no_fault_table fl-app || fail "fault table left behind in fl-app: $(fault_tables fl-app)"
east_resolves || fail "east endpoint does not resolve after the run"

if [ "$mode" = auto ]; then
  [ $rc -eq 0 ] || fail "expected exit 0 (PASS) with automated failover, got $rc"
  [ "$(jq -r .verdict "$R")" = PASS ] || fail "verdict $(jq -r .verdict "$R")"
  ttr=$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_recover_s' "$R")
  ttd=$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_detect_s' "$R")
  interval=$(jq -r '.probes[] | select(.name=="orders-api") | .interval_s' "$R")
  origin=$(jq -r .timeline.monotonic_origin_ns "$R")
  t_inject=$(jq -r .timeline.t_inject_s "$R")
  line=$(grep -h '^FAILOVER ' "$SANDBOX_RUN"/logs/*orders*.log | head -n 1)
  [ -n "$line" ] || fail "the orders service logged no FAILOVER line"
  failover_ns=$(sed -E 's/.*monotonic_ns=([0-9]+).*/\1/' <<<"$line")
  # Ground truth: the service's own failover instant, relative to the instant the fault was in
  # effect on every target (same CLOCK_MONOTONIC: namespaces share it).
  truth=$(jq -n --argjson f "$failover_ns" --argjson o "$origin" --argjson t "$t_inject" \
    '(($f - $o) / 1e9) - $t')
  diff=$(jq -n --argjson a "$ttr" --argjson b "$truth" '($a - $b) | fabs')
  tol=$(jq -n --argjson i "$interval" '$i + 0.1')
  echo "measured: detect ${ttd}s, recover ${ttr}s; logged failover at ${truth}s after inject;" \
       "difference ${diff}s (tolerance ${tol}s)"
  jq -n -e --argjson d "$diff" --argjson t "$tol" '$d <= $t' >/dev/null ||
    fail "measured recovery ${ttr}s differs from the logged failover ${truth}s by ${diff}s > ${tol}s"
  pass "flagship PASS with automated failover"
else
  [ $rc -eq 1 ] || fail "expected exit 1 (FAIL) without failover, got $rc"
  [ "$(jq -r .verdict "$R")" = FAIL ] || fail "verdict $(jq -r .verdict "$R")"
  [ "$(jq -r '.objectives[] | select(.name=="automated-failover") | .verdict' "$R")" = FAIL ] ||
    fail "automated-failover should FAIL without failover"
  [ "$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_recover_s' "$R")" = null ] ||
    fail "time_to_recover should be null when never recovered"
  [ "$(jq -r '.objectives[] | select(.name=="clean-after-revert") | .verdict' "$R")" = PASS ] ||
    fail "clean-after-revert should PASS once the record is back"
  if grep -qh '^FAILOVER ' "$SANDBOX_RUN"/logs/*orders*.log; then fail "service failed over with --failover off"; fi
  pass "flagship FAILs without failover (negative control)"
fi
