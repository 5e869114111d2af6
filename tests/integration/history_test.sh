#!/usr/bin/env bash
# Direct-mode run history: `faultline run` records the run (FAULTLINE_HISTORY), `history` lists
# it, `report` re-renders the stored report identical to the one written at run time,
# `annotate` adds a timestamped human event to it; and a history that cannot be written leaves
# the run's exit code alone (a warning only).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
EXP="$ROOT/experiments/dns-servfail-storm.yaml"
H="sqlite://$WORK/history.db"

sandbox_up --failover auto
set +e
FAULTLINE_HISTORY="$H" "$BIN/faultline" run "$EXP" --quiet --report-json "$WORK/r.json" \
  >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt"
[ $rc -eq 0 ] || fail "expected the experiment to PASS (exit 0), got $rc"
grep -q "not recorded" "$WORK/err.txt" && fail "the run was not recorded: $(cat "$WORK/err.txt")"
run_id=$(jq -r .run_id "$WORK/r.json")

"$BIN/faultline" history --history "$H" --output json >"$WORK/history.json"
[ "$(jq length "$WORK/history.json")" = 1 ] || fail "history should list 1 run: $(cat "$WORK/history.json")"
jq -e --arg id "$run_id" '.[0] | .run_id == $id and .verdict == "PASS" and .state == "finished"
  and .source == "cli" and .duration_s > 0' "$WORK/history.json" >/dev/null ||
  fail "history entry wrong: $(cat "$WORK/history.json")"
"$BIN/faultline" history --history "$H" | grep -q "$run_id" || fail "text history lacks $run_id"

# The stored report is the report: identical apart from the fields history adds (annotations are
# empty at run time and filled from the history).
"$BIN/faultline" report "${run_id:0:6}" --history "$H" --format json >"$WORK/stored.json"
diff <(jq -S 'del(.annotations, .state, .source)' "$WORK/stored.json") \
  <(jq -S 'del(.annotations)' "$WORK/r.json") ||
  fail "the stored report differs from the one written at run time"
"$BIN/faultline" report "$run_id" --history "$H" >"$WORK/stored.txt"
grep -q "Verdict: PASS" "$WORK/stored.txt" || fail "text report: $(cat "$WORK/stored.txt")"

"$BIN/faultline" annotate "$run_id" "paged the on-call" --author it-test --history "$H"
"$BIN/faultline" report "$run_id" --history "$H" --format json >"$WORK/annotated.json"
jq -e '.annotations | length == 1 and .[0].text == "paged the on-call" and .[0].author == "it-test"
  and .[0].t_s > 0 and (.[0].at | test("Z$"))' "$WORK/annotated.json" >/dev/null ||
  fail "annotation not in the report: $(jq .annotations "$WORK/annotated.json")"
"$BIN/faultline" report "$run_id" --history "$H" | grep -q "it-test: paged the on-call" ||
  fail "annotation not in the text report"
set +e
"$BIN/faultline" report nosuchrun --history "$H" 2>/dev/null
[ $? -eq 2 ] || fail "an unknown run should exit 2"

# A history that cannot be written: same verdict and exit code, a warning on stderr.
"$BIN/faultline" run "$EXP" --quiet --history "sqlite:///proc/faultline-no-such-dir/h.db" \
  >"$WORK/out2.txt" 2>"$WORK/err2.txt"
rc2=$?
set -e
[ $rc2 -eq 0 ] || fail "a broken history changed the exit code to $rc2: $(cat "$WORK/err2.txt")"
grep -q "warning: run .* was not recorded in the history" "$WORK/err2.txt" ||
  fail "no warning about the history: $(cat "$WORK/err2.txt")"
pass "run recorded, listed, re-rendered identically, annotated; a broken history only warns"
