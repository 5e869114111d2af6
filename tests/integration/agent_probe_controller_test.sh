#!/usr/bin/env bash
# Agent-side probes through faultline-controller (issue 15 item 2): the scenario of
# agent_probe_test.sh (a DNS fault on fl-app's caching resolver's upstream queries, nodata with a
# negative TTL; the controller's own probe cannot see it, the probe `from: app` can), submitted
# with `faultline run --controller` to a real faultline-controller. The sandbox comes up without
# its own agents; fl-app's agent attaches to the controller (Attach stream, mTLS) and listens on
# no port, so the controller can only reach it over that stream: the probe command, its samples,
# the clock mapping's get_info exchanges, the fault itself. One sandbox bring-up, two runs:
#   short — negative TTL 2s: the after-revert objective PASSes (exit 0);
#   long  — negative TTL 60s (negative control): it FAILs (exit 1), as it does directly.
# Usage: agent_probe_controller_test.sh BIN_DIR
# shellcheck disable=SC2154  # rc, R: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck disable=SC2034  # read by start_app_unbound (lib.sh), which waits until unbound resolves it
EAST=dynamodb.us-east-1.sandbox.test
PORT=15850
CTL="10.77.0.1:$PORT"
command -v unbound >/dev/null || fail "unbound is not installed (scripts/lib.sh installs it)"
UNBOUND_UID=$(id -u unbound) || fail "no user 'unbound' (Debian's unbound package creates it)"

sandbox_up --no-agents --failover auto
start_app_unbound

CERTS="$WORK/certs"
"$BIN/faultline" certs init "$CERTS" --san 10.77.0.1 --agent fl-app >/dev/null
"$BIN/faultline-controller" --listen "$CTL" --heartbeat 200ms --store none \
  --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/controller.pem" --tls-key "$CERTS/controller-key.pem" \
  --ready-file "$WORK/controller.ready" >"$WORK/controller.log" 2>&1 &
CONTROLLER_PID=$!
await 10 test -s "$WORK/controller.ready" || fail "controller did not start: $(cat "$WORK/controller.log")"
ip netns exec fl-app "$BIN/faultline-agent" --controller "$CTL" --name fl-app \
  --label host=fl-app --label role=app --state-dir "$WORK/state-fl-app" \
  --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/agent-fl-app.pem" \
  --tls-key "$CERTS/agent-fl-app-key.pem" --controller-max-backoff 300ms \
  >"$WORK/agent-fl-app.log" 2>&1 &
AGENT_PID=$!
stop_daemons() {
  kill "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
  kill "$CONTROLLER_PID" 2>/dev/null || true
  wait "$CONTROLLER_PID" 2>/dev/null || true
}
OPS=(--controller "$CTL" --tls-dir "$CERTS")
attached() {
  [ "$("$BIN/faultline" agents "${OPS[@]}" --output json 2>/dev/null |
    jq -r '.[] | select(.name == "fl-app") | .live')" = true ]
}
await 20 attached || { stop_daemons; fail "fl-app's agent did not attach: $(tail -n 20 "$WORK/agent-fl-app.log")"; }

run_through_controller() {  # run_through_controller TTL_SECONDS
  local exp="$WORK/agent-probe-$1s.yaml"
  write_agent_probe_dns_experiment "$exp" "agent-probe-controller-$1s" "$1" "$UNBOUND_UID"
  run_experiment "$exp" "${OPS[@]}"
}

verdict() { jq -r --arg n "$1" '.objectives[] | select(.name==$n) | .verdict' "$R"; }
probe() { jq -c --arg n "$1" '.probes[] | select(.name==$n)' "$R"; }

# What both runs show: the attached agent ran the probe, its samples came back over the stream
# mapped to the controller's clock, it saw the fault; the controller's own probe never did.
check_common() {
  local ctl app
  ctl=$(probe east-from-controller)
  [ "$(jq '.samples | length' <<<"$ctl")" -gt 0 ] || fail "the controller-side probe took no sample"
  [ "$(jq '[.samples[] | select(.ok == false)] | length' <<<"$ctl")" = 0 ] ||
    fail "the controller-side probe failed: $(jq -c '[.samples[] | select(.ok == false)][:3]' <<<"$ctl")"
  [ "$(verdict controller-unaffected)" = PASS ] || fail "controller-unaffected should PASS"
  app=$(probe east-from-app)
  jq -e '.from == "app" and (.ran_on | length) == 1 and .ran_on[0].agent == "fl-app"
         and .ran_on[0].ran_in == "host"
         and .ran_on[0].clock_error_ms > 0 and .ran_on[0].clock_error_ms < 1000' <<<"$app" \
    >/dev/null || fail "agent probe: from/ran_on: $(jq -c '[.from, .ran_on]' <<<"$app")"
  jq -e '([.samples[] | select(.where != "fl-app")] | length) == 0 and (.samples | length) > 0' \
    <<<"$app" >/dev/null || fail "the agent-side samples do not name fl-app"
  jq -e '(.timeline.t_inject_s) as $i | (.timeline.t_revert_start_s) as $e
         | [.probes[] | select(.name=="east-from-app") | .samples[]
            | select(.ok == false and .detail == "nodata" and .t_s >= $i and .t_s < $e)] | length > 0' \
    "$R" >/dev/null || fail "the agent-side probe saw no nodata answer during the fault"
  no_fault_table fl-app || fail "fault table left in fl-app: $(fault_tables fl-app)"
}

# --- short negative TTL: PASS --------------------------------------------------------------------
run_through_controller 2
check_common
[ "$rc" -eq 0 ] || fail "expected PASS (0) through the controller, got $rc: $(cat "$WORK/err.txt")"
[ "$(verdict app-after-revert)" = PASS ] || fail "app-after-revert should PASS"
# The recovery bracket's lower end is the last failing agent sample's send, widened by the clock
# mapping's error bound (measured over the Attach stream).
jq -e '
  (.timeline.t_revert_s) as $t
  | (.objectives[] | select(.name=="app-after-revert") | .time_to_recover_bracket_s) as $b
  | ([.probes[] | select(.name=="east-from-app") | .samples[] | select(.ok == false)] | last) as $f
  | ($f.t_s - $t - $f.clock_error_ms / 1000) as $lo
  | $b != null and (($b[0] - $lo) | fabs) < 1e-6 and $f.clock_error_ms > 0' "$R" >/dev/null ||
  fail "the recovery bracket is not the last failure's send widened by the clock error"
grep -q 'audit: action=Probe via=controller:' "$WORK/agent-fl-app.log" ||
  fail "the agent did not run the probe for the controller"
grep -q 'probe east-from-app ended' "$WORK/agent-fl-app.log" ||
  fail "the agent did not log the end of the probe stream"
pass "through the controller: the attached agent's probe detected the fault and recovered (PASS)"

# --- long negative TTL: FAIL (negative control) --------------------------------------------------
run_through_controller 60
check_common
[ "$rc" -eq 1 ] || fail "negative control: expected FAIL (1) through the controller, got $rc"
[ "$(verdict app-after-revert)" = FAIL ] || fail "negative control: app-after-revert should FAIL"
pass "negative control through the controller: 60s negative TTL, the agent-side objective FAILs"

stop_daemons
