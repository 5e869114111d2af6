#!/usr/bin/env bash
# The objectives a game day states (issue 15 item 5), each judged on a real run of
# experiments/orders-game-day.yaml against the sandbox: detect_within, recover_within,
# availability and a latency percentile, shown with limit, measured value and state in every
# report format.
#   auto: with automated failover every objective is met: PASS (exit 0).
#   off:  the negative controls, in one run: without failover, availability (limit 50%, measured
#         near 0%) is missed, latency is inconclusive (no successful sample to rank); two more
#         objectives are added: detection on a probe that never sees the fault (the west kv
#         service, reached by address) is missed, and a p50 below 1us on that healthy probe
#         (measured in milliseconds) is missed: FAIL (exit 1).
# Limits are chosen far from the measured values (no timing threshold decides a result).
# Usage: objectives_test.sh BIN_DIR auto|off
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?auto|off}"
EXP="$ROOT/experiments/orders-game-day.yaml"

sandbox_up --failover "$mode"
if [ "$mode" = off ]; then
  /usr/bin/python3 - "$EXP" "$WORK/negative.yaml" <<'PYEOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
doc["probes"].append({"name": "kv-west", "interval": "250ms",
                      "http": {"url": "http://10.77.0.30:8000/healthz", "timeout": "1s"}})
doc["objectives"] += [
    {"name": "wrong-probe-notices", "probe": "kv-west", "detect_within": "2m"},
    {"name": "kv-west-sub-microsecond", "probe": "kv-west",
     "latency": {"percentile": 50, "below": "1us"}},
]
yaml.safe_dump(doc, open(sys.argv[2], "w"), sort_keys=False)
PYEOF
  EXP="$WORK/negative.yaml"
fi
"$BIN/faultline" validate "$EXP" >/dev/null || fail "the experiment does not validate"

R="$WORK/report.json"
set +e
"$BIN/faultline" run "$EXP" --report-json "$R" --report-junit "$WORK/junit.xml" \
  --report-html "$WORK/report.html" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
[ -f "$R" ] || fail "no JSON report"
field() { jq -r --arg n "$1" ".objectives[] | select(.name==\$n) | .$2" "$R"; }
expect() {  # expect OBJECTIVE FIELD VALUE
  local got
  got=$(field "$1" "$2")
  [ "$got" = "$3" ] || fail "objective $1: $2 is '$got', want '$3' (note: $(field "$1" note))"
}
# Every format shows every objective's limit, measured value and state.
shows_everywhere() {  # shows_everywhere OBJECTIVE
  local limit measured state
  limit=$(field "$1" limit)
  measured=$(field "$1" measured)
  state=$(field "$1" state)
  [ -n "$limit" ] && [ -n "$measured" ] && [ -n "$state" ] || fail "objective $1 lacks limit/measured/state"
  grep -qF -- "$limit; measured $measured ($state)" "$WORK/out.txt" ||
    fail "the text report does not show objective $1 ($limit; measured $measured ($state))"
  grep -qF "name=\"objective.$1.state\" value=\"$state\"" "$WORK/junit.xml" ||
    fail "the JUnit report does not show objective $1's state"
  grep -qF "<td class=\"state $state\">$state</td>" "$WORK/report.html" ||
    fail "the HTML report does not show state $state"
}

expect monitoring-notices kind detect_within
expect monitoring-notices state met
expect orders-available kind availability
expect orders-fast kind latency
for o in monitoring-notices automated-failover orders-available orders-fast; do shows_everywhere "$o"; done
avail=$(field orders-available availability_objective.measured)
slots=$(field orders-available availability_objective.slots)
[ "$slots" -gt 0 ] || fail "availability counted no sample"
if [ "$mode" = auto ]; then
  [ $rc -eq 0 ] || fail "expected PASS (0) with automated failover, got $rc"
  for o in automated-failover orders-available orders-fast; do expect "$o" state met; done
  # The probe really saw the fault (detection is not vacuous) and the figures are the samples'.
  [ "$(field monitoring-notices time_to_detect_s)" != null ] || fail "no detection measured"
  jq -en --argjson a "$avail" '$a >= 0.5 and $a < 1' >/dev/null ||
    fail "availability $avail: expected some failures and at least 50% good"
  p50=$(field orders-fast latency_objective.measured_s)
  [ "$p50" != null ] || fail "no p50 latency measured"
  pass "game-day objectives met: detected at $(field monitoring-notices time_to_detect_s)s," \
    "availability $avail over $slots samples, p50 ${p50}s over" \
    "$(field orders-fast latency_objective.samples) successful samples"
else
  [ $rc -eq 1 ] || fail "expected FAIL (1) for the negative controls, got $rc"
  expect automated-failover state missed
  expect orders-available state missed
  jq -en --argjson a "$avail" '$a < 0.5' >/dev/null || fail "availability $avail should be below 50%"
  expect orders-fast state inconclusive
  expect orders-fast verdict FAIL
  field orders-fast note | grep -q "successful sample" || fail "the latency note does not say why"
  # The added controls.
  expect wrong-probe-notices state missed
  expect wrong-probe-notices time_to_detect_s null
  expect kv-west-sub-microsecond state missed
  [ "$(field kv-west-sub-microsecond latency_objective.measured_s)" != null ] ||
    fail "the healthy probe's p50 was not measured"
  for o in wrong-probe-notices kv-west-sub-microsecond; do shows_everywhere "$o"; done
  pass "negative controls FAIL: availability $avail missed, latency inconclusive, detection on" \
    "an unaffected probe missed, p50 $(field kv-west-sub-microsecond latency_objective.measured_s)s not below 1us"
fi
