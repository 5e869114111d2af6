#!/usr/bin/env bash
# Agent-side probes see a DNS fault the controller cannot (issue 15 item 2). A dns fault on the app
# host's resolver path; the same lookup probed from the controller keeps succeeding, the probe
# `from: app` (run by fl-app's agent, samples streamed back and mapped to the controller's clock)
# detects the fault and recovers when it ends. Both ways:
#   on   — east-nodata ends inside the window: the agent-side objective PASSes (exit 0);
#   left — east-nodata left on for the whole window (negative control): it FAILs (exit 1).
# Either way the controller-side probe saw no failure at all, and the report names where each
# probe ran, with the agent's clock error widening the recovery bracket.
# Usage: agent_probe_test.sh BIN_DIR on|left
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?on|left}"
EXP="$WORK/agent-probe-dns.yaml"
cp "$ROOT/tests/integration/testdata/agent-probe-dns.yaml" "$EXP"
if [ "$mode" = left ]; then
  # The negative control: east-nodata lasts as long as the window.
  sed -i '0,/    duration: 4s/s//    duration: 10s/' "$EXP"
  grep -q 'duration: 4s' "$EXP" && fail "the negative control still has a 4s fault"
fi

sandbox_up --failover auto
set +e
"$BIN/faultline" run "$EXP" --report-json "$WORK/report.json" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
R="$WORK/report.json"
[ -f "$R" ] || fail "no JSON report"

verdict() { jq -r --arg n "$1" '.objectives[] | select(.name==$n) | .verdict' "$R"; }
probe() { jq -c --arg n "$1" '.probes[] | select(.name==$n)' "$R"; }

# The controller's probe of the same name never failed: it cannot see the fault.
ctl=$(probe east-from-controller)
[ "$(jq '[.samples[] | select(.ok == false)] | length' <<<"$ctl")" = 0 ] ||
  fail "the controller-side probe failed: $(jq -c '[.samples[] | select(.ok == false)][:3]' <<<"$ctl")"
[ "$(jq '.samples | length' <<<"$ctl")" -gt 0 ] || fail "the controller-side probe took no sample"
[ "$(jq -r '.from' <<<"$ctl")" = controller ] || fail "controller probe: from is not controller"
[ "$(verdict controller-unaffected)" = PASS ] || fail "controller-unaffected should PASS"

# The agent-side probe ran on fl-app's agent, and saw the fault.
app=$(probe east-from-app)
agent=$(jq -r '.faults[0].agents[0].agent' "$R")
[ "$(jq -r '.from' <<<"$app")" = app ] || fail "agent probe: from is not app: $app"
[ "$(jq -r '.ran_on | length' <<<"$app")" = 1 ] || fail "agent probe: ran_on: $(jq -c .ran_on <<<"$app")"
[ "$(jq -r '.ran_on[0].agent' <<<"$app")" = "$agent" ] ||
  fail "agent probe ran on $(jq -r '.ran_on[0].agent' <<<"$app"), the fault's agent is $agent"
err_ms=$(jq -r '.ran_on[0].clock_error_ms' <<<"$app")
jq -e '.ran_on[0].clock_error_ms > 0 and .ran_on[0].clock_error_ms < 1000' <<<"$app" >/dev/null ||
  fail "implausible clock error bound: ${err_ms}ms"
jq -e --arg a "$agent" '[.samples[] | select(.where != $a)] | length == 0' <<<"$app" >/dev/null ||
  fail "an agent-side sample does not name its agent"
jq -e '[.samples[] | select(.ok == false and .detail == "nodata")] | length > 0' <<<"$app" >/dev/null ||
  fail "the agent-side probe saw no nodata answer: $(jq -c '[.samples[] | .detail] | unique' <<<"$app")"
[ "$(jq -r '.objectives[] | select(.name=="app-recovers") | .time_to_detect_s' "$R")" != null ] ||
  fail "the agent-side objective detected nothing"
jq -e '.faults[0].agents[0].evidence.queries_faulted > 0' "$R" >/dev/null ||
  fail "the fault faulted no query: $(jq -c '.faults[0].agents[0].evidence' "$R")"

# The probe stream ended with the run: fl-app's agent logged its end.
grep -hq 'probe east-from-app ended' "$SANDBOX_RUN"/logs/*.log ||
  fail "the app agent did not log the end of the probe stream"

if [ "$mode" = on ]; then
  [ $rc -eq 0 ] || fail "expected PASS (0), got $rc"
  [ "$(verdict app-recovers)" = PASS ] || fail "app-recovers should PASS"
  # The recovery bracket's lower end is the last failing agent sample's send, widened by the
  # agent's clock error bound (t_s and the bracket are on different origins: t_inject_s).
  jq -e '
    (.timeline.t_inject_s) as $t
    | (.objectives[] | select(.name=="app-recovers") | .time_to_recover_bracket_s) as $b
    | (.probes[] | select(.name=="east-from-app")) as $p
    | ([$p.samples[] | select(.ok == false)] | last) as $f
    | ($f.t_s - $t - $f.clock_error_ms / 1000) as $lo
    | $b != null and ($b[0] - $lo | fabs) < 1e-6 and $f.clock_error_ms > 0' "$R" >/dev/null ||
    fail "the recovery bracket is not the last failure's send widened by the clock error: $(
      jq -c '[.timeline.t_inject_s, (.objectives[] | select(.name=="app-recovers") | .time_to_recover_bracket_s)]' "$R")"
  grep -q 'from app: ran on' "$WORK/out.txt" || fail "the text report does not say where the probe ran"
  pass "agent-side probe detected and recovered (PASS); the controller-side probe saw nothing"
else
  [ $rc -eq 1 ] || fail "negative control: expected FAIL (1), got $rc"
  [ "$(verdict app-recovers)" = FAIL ] || fail "negative control: app-recovers should FAIL"
  pass "negative control: fault left on, the agent-side objective FAILs; the controller saw nothing"
fi
