#!/usr/bin/env bash
# The report options of the CLI, without agents: --help lists them, `faultline report` renders a
# saved report in every format (JUnit valid against the bundled XSD) and refuses bad input with
# exit code 2 and a message naming the file and field.
# Usage: report_cli_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
BIN="$1"
SRC="$2"
HERE="$SRC/tests/unit/controller/report"
FIXTURE="$HERE/testdata/flagship-fail.report.json"
fail() { echo "FAIL: $*" >&2; exit 1; }
WORK=$(mktemp -d /tmp/faultline-report-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

help=$("$BIN/faultline" run --help)
for opt in --report-json --report-html --report-junit --output --quiet; do
  grep -q -- "$opt" <<<"$help" || fail "run --help does not list $opt"
done
help=$("$BIN/faultline" report --help)
for word in --format --out html junit text json; do
  grep -q -- "$word" <<<"$help" || fail "report --help does not mention $word"
done
"$BIN/faultline" --help | grep -q "report" || fail "faultline --help does not list the report verb"

# Every format renders the same saved run.
"$BIN/faultline" report "$FIXTURE" | grep -q "^Verdict: FAIL" || fail "text report lacks the verdict"
"$BIN/faultline" report "$FIXTURE" --format json | jq -e '.verdict == "FAIL"' >/dev/null ||
  fail "json report lacks the verdict"
"$BIN/faultline" report "$FIXTURE" -f junit -o "$WORK/junit.xml"
xmllint --noout --schema "$HERE/junit.xsd" "$WORK/junit.xml" || fail "JUnit report is not valid"
grep -q '<failure message="not recovered' "$WORK/junit.xml" || fail "the missed objective is no failure"
"$BIN/faultline" report "$FIXTURE" -f html -o "$WORK/report.html"
# Saving and re-rendering gives the same page (one model for both paths).
"$BIN/faultline" report "$FIXTURE" -f json -o "$WORK/again.json"
"$BIN/faultline" report "$WORK/again.json" -f html -o "$WORK/again.html"
cmp -s "$WORK/report.html" "$WORK/again.html" || fail "re-rendering a saved report changed the page"

# Bad input: exit 2, a message naming the file and the field; nothing written.
set +e
"$BIN/faultline" report "$WORK/missing.json" 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q "cannot read report $WORK/missing.json" "$WORK/err" || fail "missing file: rc $rc"
jq '.objectives[0].target_s = "15s"' "$FIXTURE" >"$WORK/bad.json"
"$BIN/faultline" report "$WORK/bad.json" -f html -o "$WORK/bad.html" 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q "bad.json: objectives\[0\].target_s: expected a number" "$WORK/err" ||
  fail "bad field: rc $rc: $(cat "$WORK/err")"
[ ! -e "$WORK/bad.html" ] || fail "a report was written from bad input"
"$BIN/faultline" report "$FIXTURE" --format pdf 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "unknown format: rc $rc"
"$BIN/faultline" run "$SRC/experiments/dynamodb-dns-failover.yaml" --output xml 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "run --output xml: rc $rc"
set -e
echo "PASS: report CLI options, formats and errors"
