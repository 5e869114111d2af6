#!/usr/bin/env bash
# The flagship, both ways. With automated failover the experiment PASSes (exit 0) and the reported
# recovery bracket contains the orders service's own logged failover instant. With failover off
# (the negative control) the same file FAILs (exit 1) and claims no recovery bracket.
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
  # Ground truth: the service's own failover instant lies in the reported recovery bracket
  # [last failing sample's send, first good sample's answer].
  expect_failover_in_bracket "$R" automated-failover
  pass "flagship PASS with automated failover"
else
  [ $rc -eq 1 ] || fail "expected exit 1 (FAIL) without failover, got $rc"
  [ "$(jq -r .verdict "$R")" = FAIL ] || fail "verdict $(jq -r .verdict "$R")"
  [ "$(jq -r '.objectives[] | select(.name=="automated-failover") | .verdict' "$R")" = FAIL ] ||
    fail "automated-failover should FAIL without failover"
  [ "$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_recover_s' "$R")" = null ] ||
    fail "time_to_recover should be null when never recovered"
  [ "$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_recover_bracket_s' "$R")" = null ] ||
    fail "a run that never recovered must claim no recovery bracket"
  [ "$(jq -r '.objectives[] | select(.name=="clean-after-revert") | .verdict' "$R")" = PASS ] ||
    fail "clean-after-revert should PASS once the record is back"
  if grep -qh '^FAILOVER ' "$SANDBOX_RUN"/logs/*orders*.log; then fail "service failed over with --failover off"; fi
  pass "flagship FAILs without failover (negative control)"
fi
