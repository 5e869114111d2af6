#!/usr/bin/env bash
# Agent-side probes see a DNS fault the controller cannot (issue 15 item 2). fl-app resolves through
# a real caching resolver (unbound on its loopback, forwarding to fl-dns); the DNS fault is scoped
# to unbound's upstream queries and its nodata answer carries an SOA with a negative TTL, so the app
# host keeps failing after the revert until the cached answer expires. The same lookup, probed
# from the controller (straight to fl-dns), keeps succeeding; the probe `from: app` (run by fl-app's
# agent, streamed back, mapped to the controller's clock) fails and then recovers. Both ways:
#   short — negative TTL 2s: the agent-side after-revert objective PASSes (exit 0);
#   long  — negative TTL 60s (negative control): it FAILs (exit 1).
# Either way the controller-side probe saw no failure at all, and the report names where each
# probe ran, with the agent's clock error widening the recovery bracket.
# Usage: agent_probe_test.sh BIN_DIR short|long
# shellcheck disable=SC2154  # rc, R: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?short|long}"
ttl=2
[ "$mode" = long ] && ttl=60
# shellcheck disable=SC2034  # read by start_app_unbound (lib.sh), which waits until unbound resolves it
EAST=dynamodb.us-east-1.sandbox.test
command -v unbound >/dev/null || fail "unbound is not installed (scripts/lib.sh installs it)"
UNBOUND_UID=$(id -u unbound) || fail "no user 'unbound' (Debian's unbound package creates it)"

sandbox_up --failover auto
start_app_unbound

EXP="$WORK/agent-probe-dns.yaml"
write_agent_probe_dns_experiment "$EXP" "agent-probe-dns-${ttl}s" "$ttl" "$UNBOUND_UID"
run_experiment "$EXP"

verdict() { jq -r --arg n "$1" '.objectives[] | select(.name==$n) | .verdict' "$R"; }
probe() { jq -c --arg n "$1" '.probes[] | select(.name==$n)' "$R"; }

# The controller's probe of the same name never failed: it cannot see the fault.
ctl=$(probe east-from-controller)
[ "$(jq '[.samples[] | select(.ok == false)] | length' <<<"$ctl")" = 0 ] ||
  fail "the controller-side probe failed: $(jq -c '[.samples[] | select(.ok == false)][:3]' <<<"$ctl")"
[ "$(jq '.samples | length' <<<"$ctl")" -gt 0 ] || fail "the controller-side probe took no sample"
[ "$(jq -r '.from' <<<"$ctl")" = controller ] || fail "controller probe: from is not controller"
[ "$(verdict controller-unaffected)" = PASS ] || fail "controller-unaffected should PASS"

# The agent-side probe ran on fl-app's agent, and saw the fault (nodata) during it.
app=$(probe east-from-app)
agent=$(jq -r '.faults[0].agents[0].agent' "$R")
[ "$(jq -r '.from' <<<"$app")" = app ] || fail "agent probe: from is not app: $(jq -c .from <<<"$app")"
[ "$(jq -r '.ran_on | length' <<<"$app")" = 1 ] || fail "agent probe: ran_on: $(jq -c .ran_on <<<"$app")"
[ "$(jq -r '.ran_on[0].agent' <<<"$app")" = "$agent" ] ||
  fail "agent probe ran on $(jq -r '.ran_on[0].agent' <<<"$app"), the fault's agent is $agent"
jq -e '.ran_on[0].clock_error_ms > 0 and .ran_on[0].clock_error_ms < 1000' <<<"$app" >/dev/null ||
  fail "implausible clock error bound: $(jq -c .ran_on <<<"$app")"
jq -e --arg a "$agent" '[.samples[] | select(.where != $a)] | length == 0' <<<"$app" >/dev/null ||
  fail "an agent-side sample does not name its agent"
jq -e '(.timeline.t_inject_s) as $i | (.timeline.t_revert_start_s) as $e
       | [.probes[] | select(.name=="east-from-app") | .samples[]
          | select(.ok == false and .detail == "nodata" and .t_s >= $i and .t_s < $e)] | length > 0' \
  "$R" >/dev/null || fail "the agent-side probe saw no nodata answer during the fault"
[ "$(jq -r '.objectives[] | select(.name=="app-after-revert") | .time_to_detect_s' "$R")" != null ] ||
  fail "after the revert the agent-side probe saw no stale (cached) failure"
expect_dns_fault_bit_and_reverted

# The probe stream ended with the run: fl-app's agent logged its end.
grep -hq 'probe east-from-app ended' "$SANDBOX_RUN"/logs/*.log ||
  fail "the app agent did not log the end of the probe stream"

if [ "$mode" = short ]; then
  [ "$rc" -eq 0 ] || fail "expected PASS (0), got $rc"
  [ "$(verdict app-after-revert)" = PASS ] || fail "app-after-revert should PASS"
  # The recovery bracket's lower end is the last failing agent sample's send, widened by the
  # agent's clock error bound (the bracket is measured from t_revert).
  jq -e '
    (.timeline.t_revert_s) as $t
    | (.objectives[] | select(.name=="app-after-revert") | .time_to_recover_bracket_s) as $b
    | ([.probes[] | select(.name=="east-from-app") | .samples[] | select(.ok == false)] | last) as $f
    | ($f.t_s - $t - $f.clock_error_ms / 1000) as $lo
    | $b != null and (($b[0] - $lo) | fabs) < 1e-6 and $f.clock_error_ms > 0' "$R" >/dev/null ||
    fail "the recovery bracket is not the last failure's send widened by the clock error: $(
      jq -c '[.timeline.t_revert_s, (.objectives[] | select(.name=="app-after-revert") | .time_to_recover_bracket_s)]' "$R")"
  grep -q 'from app: ran on' "$WORK/out.txt" || fail "the text report does not say where the probe ran"
  pass "agent-side probe detected the fault and recovered (PASS); the controller-side probe saw nothing"
else
  [ "$rc" -eq 1 ] || fail "negative control: expected FAIL (1), got $rc"
  [ "$(verdict app-after-revert)" = FAIL ] || fail "negative control: app-after-revert should FAIL"
  pass "negative control: 60s negative TTL, the agent-side objective FAILs; the controller saw nothing"
fi
