#!/usr/bin/env bash
# Integration test of `faultline sandbox up|down|status` and the sample services.
# Usage (as root): tests/integration/sandbox_test.sh BUILD_BIN_DIR
# Brings the sandbox up, checks DNS, the orders service, replacement by a second `up`, automated
# failover (kv service in fl-db-east killed) and its negative control (--failover off), then tears
# down and checks nothing is left. Leaves no sandbox behind, pass or fail. Exit 0 on success.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"

BIN=${1:?usage: $0 BUILD_BIN_DIR}
BIN=$(cd "$BIN" && pwd)
FL="$BIN/faultline"
RUN=/run/faultline/sandbox
ORDERS=http://10.77.0.10:8080
CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  for log in "$RUN"/logs/*.log; do
    [[ -f $log ]] || continue
    echo "--- $log (last lines)" >&2
    tail -n 15 "$log" >&2 || true
  done
  exit 1
}
pass() {
  CHECKS=$((CHECKS + 1))
  echo "ok: $*"
}
cleanup() { "$FL" sandbox down >/dev/null 2>&1 || true; }
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || { echo "sandbox_test.sh needs root" >&2; exit 1; }
for b in faultline faultline-sample-kv faultline-sample-orders faultline-agent; do
  [[ -x $BIN/$b ]] || fail "$BIN/$b not built"
done

# Waits (polling, bounded) until "$@" succeeds; returns 1 on timeout.
wait_for() {
  local deadline=$((SECONDS + 10))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
pid_of() { cat "$RUN/pids/$1.pid"; }
alive() { [[ -d /proc/$1 ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
dead() { ! alive "$1"; }
# Live (non-zombie) processes that belong to a sandbox: the sample services, agents started with
# the sandbox's state dir, the dnsmasq serving sandbox.test.
sandbox_processes() {
  local pid
  for pid in $(pgrep -f 'faultline-sample-(kv|orders)|/run/faultline/sandbox|sandbox\.test' || true); do
    # Other builds on the machine compile the sample services: their tools are not ours.
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) == @(cmake|ninja|sh|ccache|c++|g++|cc1plus|as|ld|collect2) ]] && continue
    [[ $pid == "$$" ]] && continue
    alive "$pid" && echo "$pid"
  done
  return 0
}
orders_status() { curl -s --max-time 2 "$ORDERS/status"; }
orders_get() { curl -s --max-time 3 -o /tmp/sandbox_test_body.$$ -w '%{http_code}' "$ORDERS/orders/42"; }
body() { cat /tmp/sandbox_test_body.$$; }
# The top-level "region" of an orders answer (keys are sorted, so it is the last one).
served_region() { body | grep -o '"region":"[^"]*"' | tail -n 1 | cut -d'"' -f4; }

# --- up ---------------------------------------------------------------------------------------
"$FL" sandbox up >/dev/null || fail "sandbox up exited $?"
pass "sandbox up"
"$FL" sandbox status >/dev/null || fail "sandbox status exited $? right after up"
pass "sandbox status is 0 when up"
"$FL" sandbox status --output json | grep -q '"state": "up"' || fail "status --output json"

for ns in fl-net fl-app fl-dns fl-db-east fl-db-west; do
  ip netns list | grep -qw "$ns" || fail "namespace $ns missing"
done
ip -4 addr show dev fl-root | grep -q '10.77.0.1/24' || fail "fl-root has no 10.77.0.1/24"
for ns in fl-app fl-dns fl-db-east fl-db-west; do
  grep -qx 'nameserver 10.77.0.2' "/etc/netns/$ns/resolv.conf" || fail "/etc/netns/$ns/resolv.conf"
  if ip netns exec "$ns" ip route | grep -q default; then fail "$ns has a default route"; fi
done
pass "namespaces, fl-root, resolv.conf, no default routes"

got=$(ip netns exec fl-app dig +short +time=1 +tries=2 dynamodb.us-east-1.sandbox.test)
[[ $got == 10.77.0.20 ]] || fail "dig east from fl-app gave '$got'"
got=$(ip netns exec fl-app dig +short +time=1 +tries=2 dynamodb.us-west-2.sandbox.test)
[[ $got == 10.77.0.30 ]] || fail "dig west from fl-app gave '$got'"
ip netns exec fl-app dig +time=1 +tries=2 nothing.sandbox.test | grep -q 'status: NXDOMAIN' ||
  fail "other sandbox.test names are not NXDOMAIN"
grep -q 'query\[A\] dynamodb.us-east-1.sandbox.test' "$RUN/logs/dnsmasq.log" ||
  fail "dnsmasq does not log queries"
pass "dnsmasq answers in fl-app through the host resolver"

code=$(orders_get)
[[ $code == 200 ]] || fail "GET /orders/42 gave $code: $(body)"
[[ $(served_region) == us-east-1 ]] || fail "GET /orders/42 served by '$(served_region)': $(body)"
pass "orders/42 is 200 from us-east-1 (from the root namespace)"

[[ $(grep -c '^  - name: fl-' "$RUN/inventory.yaml") -eq 4 ]] || fail "inventory.yaml: $(cat "$RUN/inventory.yaml")"
grep -q 'labels: {host: fl-db-west, role: db, region: us-west-2}' "$RUN/inventory.yaml" ||
  fail "inventory.yaml labels: $(cat "$RUN/inventory.yaml")"
for host in fl-app:10.77.0.10 fl-dns:10.77.0.2 fl-db-east:10.77.0.20 fl-db-west:10.77.0.30; do
  ip netns exec "${host%%:*}" ss -ltnH "sport = :7070" | grep -qE "${host#*:}]?:7070" ||
    fail "no agent listening on ${host#*:}:7070"
done
pass "inventory.yaml and an agent listening on every host"

for name in dnsmasq orders kv-east kv-west agent-fl-app; do
  pid=$(pid_of "$name")
  alive "$pid" || fail "$name (pid $pid) not alive"
  [[ $(ps -o sid= -p "$pid" | tr -d ' ') == "$pid" ]] || fail "$name is not in a session of its own"
done
pass "daemons detached (each leads its own session)"

# --- up again replaces ------------------------------------------------------------------------
old_orders=$(pid_of orders)
old_dnsmasq=$(pid_of dnsmasq)
"$FL" sandbox up --failover auto --failover-threshold 3 >/dev/null || fail "second sandbox up exited $?"
dead "$old_orders" || fail "old orders service (pid $old_orders) survived a second up"
dead "$old_dnsmasq" || fail "old dnsmasq (pid $old_dnsmasq) survived a second up"
[[ $(pid_of orders) != "$old_orders" ]] || fail "orders pid unchanged after second up"
"$FL" sandbox status >/dev/null || fail "status after second up exited $?"
code=$(orders_get)
[[ $code == 200 ]] || fail "after second up GET /orders/42 gave $code"
pass "a second up replaces the sandbox"

# --- failover auto ------------------------------------------------------------------------------
orders_status | grep -q '"failed_over_at_monotonic_ns":null' || fail "failed over too early: $(orders_status)"
kv_east=$(pid_of kv-east)
kill "$kv_east"
wait_for dead "$kv_east" || fail "kv-east did not stop"
codes=""
for _ in 1 2 3 4 5; do
  code=$(orders_get)
  codes+="$code "
  [[ $code == 200 ]] && break
done
[[ $codes == "503 503 200 " ]] || fail "with east down, expected 503 503 200 (threshold 3), got: $codes"
[[ $(served_region) == us-west-2 ]] || fail "after failover served by '$(served_region)'"
st=$(orders_status)
grep -q '"region":"us-west-2"' <<<"$st" || fail "status after failover: $st"
grep -q '"failed_over_at_monotonic_ns":[0-9]' <<<"$st" || fail "no failover instant in: $st"
line=$(grep '^FAILOVER ' "$RUN/logs/orders.log" || true)
[[ $(wc -l <<<"$line") -eq 1 ]] || fail "expected one FAILOVER line, got: $line"
[[ $line =~ ^FAILOVER\ monotonic_ns=[0-9]+\ wall_unix_ms=[0-9]+\ from=us-east-1\ to=us-west-2\ after_failures=3$ ]] ||
  fail "FAILOVER line malformed: $line"
ns_line=${line#*monotonic_ns=}
ns_line=${ns_line%% *}
grep -q "\"failed_over_at_monotonic_ns\":$ns_line" <<<"$st" || fail "status and FAILOVER line disagree"
"$FL" sandbox status >/dev/null && fail "status is 0 with kv-east dead" || rc=$?
[[ $rc -eq 1 ]] || fail "status with kv-east dead exited $rc, want 1 (partly up)"
pass "failover auto: east killed -> 503 503 then 200 from us-west-2, one FAILOVER line; status 1"

# --- failover off (negative control) -----------------------------------------------------------
"$FL" sandbox up --failover off >/dev/null || fail "sandbox up --failover off exited $?"
kv_east=$(pid_of kv-east)
kill "$kv_east"
wait_for dead "$kv_east" || fail "kv-east did not stop"
for _ in 1 2 3 4 5 6; do
  code=$(orders_get)
  [[ $code == 503 ]] || fail "with failover off and east down, got $code: $(body)"
done
grep -q 'us-east-1' <<<"$(body)" || fail "503 body does not name the failing dependency: $(body)"
st=$(orders_status)
grep -q '"region":"us-east-1"' <<<"$st" || fail "failover off switched region: $st"
grep -q '"failover":"off"' <<<"$st" || fail "status does not say failover off: $st"
grep -q '"consecutive_failures":6' <<<"$st" || fail "failures not counted: $st"
if grep -q '^FAILOVER ' "$RUN/logs/orders.log"; then fail "FAILOVER line with failover off"; fi
pass "failover off: stays on us-east-1 and keeps failing"

# --- a DNS failure is reported as such --------------------------------------------------------
"$FL" sandbox up --no-agents >/dev/null || fail "sandbox up --no-agents exited $?"
grep -qx 'agents: \[\]' "$RUN/inventory.yaml" || fail "inventory with --no-agents: $(cat "$RUN/inventory.yaml")"
# A resolver that never answers (dnsmasq stopped): the service must give up after its own
# timeout (500 ms), not after glibc's (~10 s), so the 3 s client limit is far from both.
kill -STOP "$(pid_of dnsmasq)"
code=$(orders_get) || true
kill -CONT "$(pid_of dnsmasq)"
[[ $code == 503 ]] || fail "with dnsmasq stopped, got '$code' (the service hung on the resolver?)"
grep -q 'timed out' <<<"$(body)" || fail "503 body does not say it timed out: $(body)"
kill "$(pid_of dnsmasq)"
wait_for dead "$(pid_of dnsmasq)" || fail "dnsmasq did not stop"
code=$(orders_get)
[[ $code == 503 ]] || fail "with dnsmasq down, got $code"
grep -q 'could not resolve dynamodb.us-east-1.sandbox.test' <<<"$(body)" ||
  fail "503 body does not say the name did not resolve: $(body)"
pass "--no-agents inventory; silent resolver -> 503 timed out; dead resolver -> 503 could not resolve"

# --- down ---------------------------------------------------------------------------------------
"$FL" sandbox up >/dev/null || fail "sandbox up before down exited $?"
"$FL" sandbox down >/dev/null || fail "sandbox down exited $?"
if ip netns list | grep -q '^fl-'; then fail "namespaces left: $(ip netns list)"; fi
if ip link show fl-root >/dev/null 2>&1; then fail "fl-root link left"; fi
if compgen -G '/etc/netns/fl-*' >/dev/null; then fail "/etc/netns/fl-* left"; fi
[[ ! -e $RUN ]] || fail "$RUN left"
left=$(sandbox_processes)
[[ -z $left ]] || fail "processes left: $(ps -o pid,stat,args -p "$(tr '\n' ',' <<<"$left" | sed 's/,$//')")"
"$FL" sandbox down >/dev/null || fail "second sandbox down exited $?"
"$FL" sandbox status >/dev/null && rc=0 || rc=$?
[[ $rc -eq 3 ]] || fail "status when down exited $rc, want 3"
pass "down leaves no namespace, link, file or process; idempotent; status 3"

rm -f /tmp/sandbox_test_body.$$
echo "$CHECKS passed, 0 failed"
