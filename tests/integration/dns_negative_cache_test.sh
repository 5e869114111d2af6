#!/usr/bin/env bash
# "Flush your DNS caches": the October 2025 incident's tail, with a real caching resolver on the
# app host. An unbound on fl-app's loopback forwards to fl-dns; a second orders service (failover
# off) resolves the east endpoint through it. The DNS fault is scoped to unbound's uid, so it hits
# the resolver's upstream queries (as the authoritative answer went empty in the incident) and
# the application sees the fault only through the cache. The answer carries an SOA with the
# experiment's negative TTL, unbound caches it, and after the revert the service stays down until
# the cached negative answer expires. The experiment's `after: revert` objective (recover within
# 5s) must PASS with a short negative TTL and FAIL (exit 1) with a long one: the negative control,
# which also shows the stale answer still in unbound's cache while fl-dns already answers.
# Usage: dns_negative_cache_test.sh BIN_DIR NEGATIVE_TTL_S nodata|nxdomain pass|fail
# shellcheck disable=SC2154  # rc: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
ttl="${2:?negative TTL in seconds}"
mode="${3:?nodata|nxdomain}"
want="${4:?pass|fail}"
EAST=dynamodb.us-east-1.sandbox.test
ORDERS_PORT=8081
command -v unbound >/dev/null || fail "unbound is not installed (scripts/lib.sh installs it)"
id -u unbound >/dev/null 2>&1 || fail "no user 'unbound' (Debian's unbound package creates it)"
UNBOUND_UID=$(id -u unbound)

sandbox_up --failover off
start_app_unbound "log-replies: yes"
via_unbound() { ip netns exec fl-app dig +time=1 +tries=1 @127.0.0.1 "$EAST" A; }

# The application: an orders service whose /etc/resolv.conf names the caching resolver (its own
# mount namespace over the one `ip netns exec` gives it).
echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
ip netns exec fl-app unshare --mount -- sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' \
  _ "$WORK/resolv.conf" "$BIN/faultline-sample-orders" --listen "0.0.0.0:$ORDERS_PORT" \
  --region us-east-1 --secondary-region us-west-2 --failover off \
  --ready-file "$WORK/orders.ready" >"$WORK/orders.log" 2>&1 &
await 10 test -f "$WORK/orders.ready" || { cat "$WORK/orders.log" >&2; fail "orders via unbound did not start"; }
URL="http://10.77.0.10:$ORDERS_PORT/orders/42"
await 10 curl -fsS -o /dev/null --max-time 1 "$URL" || { cat "$WORK/orders.log" >&2; fail "orders via unbound is not healthy"; }

EXP="$WORK/negative-cache.yaml"
cat >"$EXP" <<EOF
apiVersion: faultline/v1
kind: Experiment
metadata: {name: negative-cache-$mode-${ttl}s}
targets:
  app: {selector: {role: app}}
faults:
  - name: dynamodb-dns-upstream
    target: app
    dns:
      domains: ["$EAST"]
      mode: $mode
      negative_ttl: ${ttl}s
      scope: {uid: $UNBOUND_UID}   # the caching resolver's upstream queries only
    duration: 6s
probes:
  - name: orders-via-cache
    http: {url: "$URL", expect_status: 200, timeout: 1s}
    interval: 250ms
steady_state: {probes: [orders-via-cache], for: 2s}
objectives:
  - {name: clean-after-revert, probe: orders-via-cache, after: revert, recover_within: 5s, stable_for: 1s}
EOF
run_experiment "$EXP"
# The resolver's upstream queries got the fault, and the application saw it during the fault.
jq -e '.faults[0].agents[0].evidence.queries_faulted > 0' "$R" >/dev/null ||
  fail "the fault faulted no query: $(jq -c '.faults[0].agents[0].evidence' "$R")"
jq -e '.faults[0].agents[0] as $a | [.probes[0].samples[]
       | select(.t_s >= $a.applied_at and .t_s < $a.reverted_at and (.ok | not))] | length > 0' \
  "$R" >/dev/null || fail "the service never failed during the fault: the cache did not see it"
no_fault_table fl-app || fail "fault table left behind: $(fault_tables fl-app)"
verdict=$(jq -r '.objectives[] | select(.after == "revert") | .verdict' "$R")
if [ "$want" = pass ]; then
  [ $rc -eq 0 ] && [ "$verdict" = PASS ] ||
    fail "negative TTL ${ttl}s: expected PASS (0), got exit $rc, after-revert $verdict"
  pass "$mode, negative TTL ${ttl}s: the cache forgot in time, after-revert objective PASS"
else
  [ $rc -eq 1 ] && [ "$verdict" = FAIL ] ||
    fail "negative TTL ${ttl}s: expected FAIL (1), got exit $rc, after-revert $verdict"
  # Why: fl-dns answers again, the caching resolver still serves the fault's negative answer
  # with its SOA (the fault is gone from the host).
  [ "$(ip netns exec fl-app dig +short +time=1 +tries=1 @10.77.0.2 "$EAST" A)" = 10.77.0.20 ] ||
    fail "fl-dns does not answer after the run"
  cached=$(via_unbound)
  want_status=NOERROR; [ "$mode" = nxdomain ] && want_status=NXDOMAIN
  grep -q "status: $want_status" <<<"$cached" && grep -q "IN[[:space:]]*SOA[[:space:]]*faultline.invalid." <<<"$cached" ||
    fail "unbound does not hold the negative answer: $cached"
  grep -q "ANSWER: 0" <<<"$cached" || fail "unbound answers $EAST although its cache should be negative: $cached"
  pass "$mode, negative TTL ${ttl}s: stale cache keeps the service down, after-revert objective FAIL (negative control)"
fi
