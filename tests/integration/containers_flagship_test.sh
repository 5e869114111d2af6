#!/usr/bin/env bash
# The container flagship (experiments/dynamodb-dns-failover-containers.yaml) against
# `faultline sandbox up --containers`: real Podman containers built from the project's binaries,
# discovered by their hosts' agents through each host's Podman API, the DNS fault inside the
# orders container's network namespace.
#   auto: PASS (exit 0); the recovery bracket contains the orders container's own logged
#         failover instant; the host fl-app and its orders service are untouched. Then, on the
#         same sandbox (2 replicas: 4 kv containers on the 2 db agents), `mode: percent:50`
#         blackholes exactly 2 of the 4 kv containers: the report names which, their probes
#         fail, the other 2 containers' probes and the host's kv service never do.
#   off:  (first: `sandbox up --containers` killed -9 mid-way, then `sandbox down` leaves
#         nothing behind) the same flagship FAILs (exit 1): the negative control.
# Both ways: `sandbox status` lists the containers, and `sandbox down` removes containers,
# Podman services, mounts, namespaces and state completely.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?auto|off}"
command -v podman >/dev/null || fail "podman is not installed (scripts/lib.sh installs it)"
EXP="$ROOT/experiments/dynamodb-dns-failover-containers.yaml"
CT_DIR="$SANDBOX_RUN/containers"

# Nothing of the containers is left: no fl-c-* namespace, no mount below the sandbox's state,
# no Podman service or container monitor of ours, no state directory.
# The fl-c-* namespaces present now, one per line.
container_netns() {
  local f
  for f in /run/netns/fl-c-*; do [ -e "$f" ] && echo "${f##*/}"; done
  return 0
}

expect_nothing_left() {
  local what="$1"
  [ -z "$(container_netns)" ] ||
    fail "$what: container namespaces left: $(container_netns | tr '\n' ' ')"
  ! grep -q " $SANDBOX_RUN/" /proc/self/mounts || fail "$what: mounts left below $SANDBOX_RUN"
  ! pgrep -f -- "--root $CT_DIR/" >/dev/null || fail "$what: podman processes left: $(pgrep -af -- "--root $CT_DIR/")"
  ! pgrep -f -- "$CT_DIR/" >/dev/null || fail "$what: processes of the containers left: $(pgrep -af -- "$CT_DIR/")"
  [ ! -e "$SANDBOX_RUN" ] || fail "$what: $SANDBOX_RUN left"
}

# The orders container's logged failover (CLOCK_MONOTONIC, the same in every namespace), in
# seconds after REPORT's t_inject; empty when it logged none.
container_failover_after_inject() {
  local report="$1" ns
  ns=$(grep -ho 'FAILOVER monotonic_ns=[0-9]*' "$SANDBOX_RUN/logs/container-fl-orders-1.log" |
    head -n 1 | sed 's/.*=//' || true)
  [ -n "$ns" ] || return 0
  jq -n --argjson f "$ns" --argjson o "$(jq .timeline.monotonic_origin_ns "$report")" \
    --argjson t "$(jq .timeline.t_inject_s "$report")" '(($f - $o) / 1e9) - $t'
}

if [ "$mode" = off ]; then
  # A crashed `up`: killed -9 once its first container runs. `down` still removes everything.
  "$BIN/faultline" sandbox up --containers --failover off >"$WORK/crashed-up.log" 2>&1 &
  up_pid=$!
  await 120 test -s "$SANDBOX_RUN/logs/container-fl-kv-east-1.log" ||
    { cat "$WORK/crashed-up.log" >&2; fail "the first container never started"; }
  kill -9 "$up_pid"
  wait "$up_pid" 2>/dev/null || true
  "$BIN/faultline" sandbox down >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "sandbox down after a crashed up"; }
  expect_nothing_left "sandbox down after up was killed -9"
  pass "sandbox down after a crashed 'up --containers' leaves nothing behind"
  sandbox_up --containers --failover off
else
  sandbox_up --containers --container-replicas 2 --failover auto
fi

# status lists every container, running, with its pid and labels.
"$BIN/faultline" sandbox status --output json >"$WORK/status.json" || fail "sandbox status is not up"
want=$([ "$mode" = auto ] && echo 6 || echo 3)
[ "$(jq '[.containers[] | select(.running)] | length' "$WORK/status.json")" = "$want" ] ||
  fail "status: want $want running containers: $(jq -c .containers "$WORK/status.json")"
pid=$(jq -r '.containers[] | select(.name == "fl-orders-1") | .pid' "$WORK/status.json")
[ "$(stat -L -c %i "/proc/$pid/ns/net")" = "$(stat -L -c %i /run/netns/fl-c-orders-1)" ] ||
  fail "fl-orders-1 (pid $pid) is not in its namespace fl-c-orders-1"
[ "$(jq -r '.containers[] | select(.name == "fl-orders-1") | .labels.app' "$WORK/status.json")" = orders ] ||
  fail "fl-orders-1 is not labelled app=orders"
pass "status lists $want running containers (fl-orders-1: pid $pid, in fl-c-orders-1, app=orders)"

set +e
"$BIN/faultline" run "$EXP" --report-json "$WORK/report.json" >"$WORK/out.txt" 2>"$WORK/err.txt"
rc=$?
set -e
cat "$WORK/err.txt" "$WORK/out.txt"
R="$WORK/report.json"
[ -f "$R" ] || fail "no JSON report written"
jq -r '.faults[0].agents[].workload' "$R" | grep -q '^container fl-orders-1 (docker [0-9a-f]*) on fl-app$' ||
  fail "the report does not name the orders container: $(jq -c '[.faults[0].agents[].workload]' "$R")"
jq -e '[.faults[0].agents[] | select(.workload | startswith("container fl-orders-1 ")) | .evidence.queries_faulted] | .[0] > 0' "$R" >/dev/null ||
  fail "the DNS fault in fl-orders-1 reported no faulted query: $(jq -c '.faults[0].agents' "$R")"
# The host fl-app was never touched: no fault table there, its own orders service never failed.
no_fault_table fl-app || fail "fault table in the host fl-app: $(fault_tables fl-app)"
if grep -q '^FAILOVER ' "$SANDBOX_RUN/logs/orders.log"; then fail "the host's orders service failed over"; fi
host_status=$(curl -sf --max-time 2 http://10.77.0.10:8080/status)
[ "$(jq -r .region <<<"$host_status")" = us-east-1 ] || fail "host orders service: $host_status"
for ns in $(container_netns); do
  no_fault_table "$ns" || fail "fault table left in $ns after the run: $(fault_tables "$ns")"
done
pass "the fault acted in the container only: host fl-app untouched, every table reverted"

if [ "$mode" = off ]; then
  [ $rc -eq 1 ] || fail "expected exit 1 (FAIL) without failover, got $rc"
  [ "$(jq -r .verdict "$R")" = FAIL ] || fail "verdict $(jq -r .verdict "$R")"
  [ "$(jq -r '.objectives[] | select(.name=="automated-failover") | .verdict' "$R")" = FAIL ] ||
    fail "automated-failover should FAIL without failover"
  [ "$(jq -r '.objectives[] | select(.name=="clean-after-revert") | .verdict' "$R")" = PASS ] ||
    fail "clean-after-revert should PASS once the record is back"
  if grep -q 'FAILOVER ' "$SANDBOX_RUN/logs/container-fl-orders-1.log"; then
    fail "the orders container failed over with --failover off"
  fi
  pass "container flagship FAILs without failover (negative control)"
else
  [ $rc -eq 0 ] || fail "expected exit 0 (PASS) with automated failover, got $rc"
  [ "$(jq -r .verdict "$R")" = PASS ] || fail "verdict $(jq -r .verdict "$R")"
  truth=$(container_failover_after_inject "$R")
  [ -n "$truth" ] || fail "the orders container logged no FAILOVER line"
  lo=$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_recover_bracket_s[0]' "$R")
  hi=$(jq -r '.objectives[] | select(.name=="automated-failover") | .time_to_recover_bracket_s[1]' "$R")
  jq -n -e --argjson lo "$lo" --argjson hi "$hi" --argjson t "$truth" '$lo <= $t and $t <= $hi' \
    >/dev/null || fail "the container's logged failover ${truth}s lies outside [${lo}s, ${hi}s]"
  pass "container flagship PASS with failover; logged failover ${truth}s in the bracket [${lo}s, ${hi}s]"

  # percent:50 across 4 kv containers on the 2 db agents: exactly 2 blackholed, the others and
  # the host's kv service see nothing.
  {
    cat <<'EXP'
apiVersion: faultline/v1
kind: Experiment
metadata: {name: kv-containers-percent}
targets:
  kv: {selector: {role: db}, workloads: {runtime: docker, labels: {app: kv}}, mode: "percent:50"}
faults:
  - name: kv-blackhole
    target: kv
    network: {blackhole: {}, match: {direction: ingress, protocol: tcp, local_ports: [8000]}}
    duration: 6s
probes:
EXP
    for c in fl-kv-east-1:10.77.0.111 fl-kv-east-2:10.77.0.112 fl-kv-west-1:10.77.0.121 \
      fl-kv-west-2:10.77.0.122 host-kv-east:10.77.0.20; do
      printf '  - {name: %s, http: {url: "http://%s:8000/healthz", timeout: 500ms}, interval: 250ms}\n' \
        "${c%%:*}" "${c#*:}"
    done
    echo "objectives:"
    for p in fl-kv-east-1 fl-kv-east-2 fl-kv-west-1 fl-kv-west-2 host-kv-east; do
      printf '  - {name: %s-back, probe: %s, after: revert, recover_within: 30s}\n' "$p" "$p"
    done
  } >"$WORK/percent.yaml"
  set +e
  "$BIN/faultline" run "$WORK/percent.yaml" --report-json "$WORK/percent.json" >"$WORK/percent.out" 2>&1
  prc=$?
  set -e
  P="$WORK/percent.json"
  [ -f "$P" ] || { cat "$WORK/percent.out" >&2; fail "percent run: no report (exit $prc)"; }
  mapfile -t picked < <(jq -r '.faults[0].agents[].workload' "$P" | sed -E 's/^container ([^ ]+) .*/\1/' | sort)
  [ "${#picked[@]}" = 2 ] || { cat "$WORK/percent.out" >&2; fail "percent:50 of 4 picked ${#picked[@]}: ${picked[*]}"; }
  failures() { jq --arg p "$1" '[.probes[] | select(.name == $p) | .samples[] | select(.ok | not)] | length' "$P"; }
  for c in fl-kv-east-1 fl-kv-east-2 fl-kv-west-1 fl-kv-west-2; do
    n=$(failures "$c")
    if printf '%s\n' "${picked[@]}" | grep -qx "$c"; then
      [ "$n" -gt 0 ] || fail "$c was picked but its probe never failed"
    else
      [ "$n" = 0 ] || fail "$c was not picked but its probe failed $n time(s)"
    fi
  done
  [ "$(failures host-kv-east)" = 0 ] || fail "the host fl-db-east's kv service was affected"
  [ $prc -eq 0 ] || { cat "$WORK/percent.out" >&2; fail "percent run exit $prc"; }
  pass "percent:50 of 4 kv containers on 2 agents: exactly ${picked[*]} blackholed; the other 2 and the host saw nothing"
fi

"$BIN/faultline" sandbox down >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "sandbox down"; }
expect_nothing_left "sandbox down"
pass "sandbox down removed containers, Podman services, mounts, namespaces and state"
