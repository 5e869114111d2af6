#!/usr/bin/env bash
# Repeat and compare (issue 15 item 6) against the sandbox (failover off, so each run's recovery
# is set by how fast the killed db service is restarted; testdata/repeat-db-restart.yaml):
#  1. a baseline run with the default 1s restart delay (PASS, recorded in the history);
#  2. `--repeat 3 --baseline RUN --tolerance 500ms`, same sandbox: 3 runs, each in the history
#     under its own id, the JSON distribution consistent with the runs, no regression: exit 0
#     (the negative control of the gate);
#  3. the sandbox again with a 4s restart delay, `--repeat 3 --baseline last-pass`: every run
#     PASSes its objective, but recovery regressed beyond the brackets + 500ms: exit 5, and the
#     baseline is the newest PASS run of 2;
#  4. `history --trend` shows the 7 runs with their brackets (text, JSON, HTML chart);
#  5. Ctrl-C during the first run of a `--repeat 3`: that run is aborted and reverted, no next run
#     starts: exit 3, one run completed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
H="sqlite://$WORK/history.db"
EXP="$ROOT/tests/integration/testdata/repeat-db-restart.yaml"

sandbox_up --failover off
set +e
"$BIN/faultline" run "$EXP" --quiet --history "$H" --report-json "$WORK/base.json" \
  >"$WORK/base.out" 2>"$WORK/base.err"
rc=$?
set -e
cat "$WORK/base.err" "$WORK/base.out"
[ $rc -eq 0 ] || fail "baseline run: expected exit 0, got $rc"
base_id=$(jq -r .run_id "$WORK/base.json")
base_ttr=$(jq -r '.objectives[0].time_to_recover_s' "$WORK/base.json")
echo "baseline $base_id recovered at ${base_ttr}s"

# 2. Same outage, three times: no regression (exit 0).
set +e
"$BIN/faultline" run "$EXP" --quiet --repeat 3 --repeat-pause 1s --baseline "$base_id" \
  --tolerance 500ms --history "$H" --output json >"$WORK/same.json" 2>"$WORK/same.err"
rc=$?
set -e
cat "$WORK/same.err"; jq -c '{verdict, exit_code, objectives, baseline}' "$WORK/same.json"
[ $rc -eq 0 ] || fail "repeat with an equal baseline: expected exit 0, got $rc"
S="$WORK/same.json"
jq -e '.verdict == "PASS" and .exit_code == 0 and .repeat.requested == 3 and .repeat.completed == 3
  and .repeat.stopped == false and ([.runs[].verdict] == ["PASS","PASS","PASS"])' "$S" >/dev/null ||
  fail "repeat summary wrong"
[ "$(jq -r '[.runs[].run_id] | unique | length' "$S")" = 3 ] || fail "the 3 runs do not have 3 run ids"
# The distribution is the runs' own figures: count 3, min/max are the extremes, median the middle.
jq -e '.objectives[0] as $o | [.runs[].objectives[0].time_to_recover_s] | sort as $v |
  $o.time_to_recover_s.count == 3 and $o.time_to_recover_s.min == $v[0] and
  $o.time_to_recover_s.median == $v[1] and $o.time_to_recover_s.max == $v[2] and
  $o.time_to_recover_s.p95 == $v[2] and $o.time_to_detect_s.count == 3' "$S" >/dev/null ||
  fail "the distribution does not match the runs: $(jq -c .objectives "$S")"
jq -e --arg b "$base_id" '.baseline.run_id == $b and .baseline.regressed == false and
  .baseline.objectives[0].status == "ok" and .baseline.objectives[0].runs_compared == 3' "$S" >/dev/null ||
  fail "baseline comparison should pass: $(jq -c .baseline "$S")"
for id in $(jq -r '.runs[].run_id' "$S"); do
  "$BIN/faultline" report "$id" --history "$H" --format json | jq -e '.verdict == "PASS"' >/dev/null ||
    fail "run $id is not in the history"
done
last_pass=$(jq -r '.runs[2].run_id' "$S")
pass "--repeat 3 against an equal baseline: exit 0, distribution of the 3 runs"

# 3. A slower restart: every run PASSes its objective, but recovery regressed (exit 5).
sandbox_up --failover off --db-restart-delay-ms 4000
set +e
"$BIN/faultline" run "$EXP" --quiet --repeat 3 --repeat-pause 1s --baseline last-pass \
  --tolerance 500ms --history "$H" --output json >"$WORK/slow.json" 2>"$WORK/slow.err"
rc=$?
set -e
cat "$WORK/slow.err"; jq -c '{verdict, exit_code, objectives, baseline}' "$WORK/slow.json"
[ $rc -eq 5 ] || fail "repeat with a slower recovery: expected exit 5 (regressed), got $rc"
jq -e --arg b "$last_pass" '.verdict == "REGRESSED" and ([.runs[].verdict] == ["PASS","PASS","PASS"])
  and .baseline.run_id == $b and .baseline.regressed == true and
  .baseline.objectives[0].status == "regressed" and
  .baseline.objectives[0].runs_lo_median_s > .baseline.objectives[0].limit_s' "$WORK/slow.json" >/dev/null ||
  fail "the slower runs should regress against last-pass ($last_pass): $(jq -c .baseline "$WORK/slow.json")"
pass "--repeat 3 against a faster baseline (last-pass): every run PASS, gate REGRESSED, exit 5"

# 4. The trend: 7 runs, oldest first, each with its bracket; the HTML chart draws 7 brackets.
"$BIN/faultline" history --trend repeat-db-restart --history "$H" --output json --html "$WORK/trend.html" \
  >"$WORK/trend.json"
jq -e --arg b "$base_id" '.objectives[0].points | length == 7 and .[0].run_id == $b and
  all(.[]; .recover_lo_s <= .time_to_recover_s and .time_to_recover_s <= .recover_hi_s)' \
  "$WORK/trend.json" >/dev/null || fail "trend wrong: $(cat "$WORK/trend.json")"
[ "$(grep -o 'class="bracket"' "$WORK/trend.html" | wc -l)" = 7 ] || fail "the trend chart lacks brackets"
grep -q '<script' "$WORK/trend.html" && fail "the trend page carries a script"
"$BIN/faultline" history --trend repeat-db-restart --history "$H" | grep -q "$base_id" ||
  fail "text trend lacks the baseline run"
pass "history --trend: 7 runs with brackets, text, JSON and HTML"

# 5. Ctrl-C during the first run of three: reverted, no next run, exit 3. (A background job of
# a script has SIGINT ignored; the wrapper restores the default before exec, as a terminal has.)
kv_before=$(cat "$SANDBOX_RUN/pids/kv-east-service.pid")
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  "$BIN/faultline" run "$EXP" --quiet --repeat 3 --repeat-pause 1s --history "$H" \
  --output json >"$WORK/int.json" 2>"$WORK/int.err" &
pid=$!
await 30 bash -c "! kill -0 $kv_before 2>/dev/null" || fail "the first run's fault was never applied"
kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
cat "$WORK/int.err"
[ $rc -eq 3 ] || fail "Ctrl-C during a repeat: expected exit 3, got $rc"
jq -e '.repeat.completed == 1 and .repeat.stopped == true and .runs[0].verdict == "ABORTED"' \
  "$WORK/int.json" >/dev/null || fail "Ctrl-C summary wrong: $(jq -c '{repeat, runs}' "$WORK/int.json")"
[ "$("$BIN/faultline" history --history "$H" --experiment repeat-db-restart --limit 0 --output json | jq length)" = 8 ] ||
  fail "a run after the Ctrl-C was started (history should hold 8 runs)"
pass "Ctrl-C during a repeat: run aborted and reverted, no next run, exit 3"
