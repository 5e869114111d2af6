#!/usr/bin/env bash
# The dependency fault proxy over real IPv6 (scratch namespaces p6-c and p6-s joined by a veth,
# addresses fd77:6::/64 and 10.99.66.0/24; a dnsmasq of our own answers AAAA for db6.p6.test in
# p6-c). Faults are applied in p6-c through the agent's FaultManager and ProxyBackend
# (bench/net_fault_driver spec ...), so the path is the agent's: nft nat redirect of the IPv6
# destination, the proxy's [::1] listener, IP6T_SO_ORIGINAL_DST, the marked onward connect.
#   - limit_data (downstream) on a plain TCP server, by IPv6 address: the client receives exactly
#     the limit, then the close;
#   - an HTTP abort (503) by host name resolving to AAAA only: the client gets the proxy's answer,
#     the server never sees the request, and the client still dialled the server's own address;
#     the fault follows the name to a new AAAA address while active;
#   - one fault naming an IPv4 and an IPv6 address aborts on both families;
#   - every revert leaves no faultline_ table and traffic goes direct again;
#   - without IPv6 loopback in the namespace a fault on an IPv6 peer is refused, not a no-op.
# Takes the sandbox lock through lib.sh (network tests never overlap) but needs no sandbox.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
DRIVER="$BIN/net_fault_driver"
[ -x "$DRIVER" ] || fail "build net_fault_driver first"
C=p6-c S=p6-s
A6=fd77:6::2 B6=fd77:6::3 A4=10.99.66.2
TPORT=15551 HPORT=15552 NAME=db6.p6.test
HOSTS="$WORK/hosts" DOCS="$WORK/docs"
PY=/usr/bin/python3

scratch_down() {
  for ns in $C $S; do ip netns del $ns 2>/dev/null || true; done
  rm -rf /etc/netns/$C
}
on_exit() {
  local rc=$?
  jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null; scratch_down; rm -rf "$WORK"; exit $rc
}
trap on_exit EXIT
scratch_down
for ns in $C $S; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add p6-cv netns $C type veth peer name p6-sv netns $S
ip -n $C addr add fd77:6::1/64 dev p6-cv nodad
ip -n $S addr add $A6/64 dev p6-sv nodad
ip -n $S addr add $B6/64 dev p6-sv nodad
ip -n $C addr add 10.99.66.1/24 dev p6-cv
ip -n $S addr add $A4/24 dev p6-sv
ip -n $C link set p6-cv up
ip -n $S link set p6-sv up

# p6-c resolves through our dnsmasq (ip netns exec binds /etc/netns/p6-c/resolv.conf). The name
# has an AAAA record only.
echo "$A6 $NAME" >"$HOSTS"
scratch_dnsmasq $C "$HOSTS" "$WORK/dnsmasq.log"

# Servers in p6-s: a file over plain TCP (one connection each), an HTTP server on both families.
mkdir -p "$DOCS"
head -c 100000 /dev/urandom >"$DOCS/blob"
echo "hello from p6-s" >"$DOCS/index.txt"
mkdir -p "$DOCS/abort"
for i in 1 2 3 4; do echo "not aborted" >"$DOCS/abort/$i"; done
chmod -R a+rX "$DOCS"
ip netns exec $S socat -U TCP6-LISTEN:$TPORT,fork,reuseaddr OPEN:"$DOCS/blob" \
  >"$WORK/socat.log" 2>&1 &
ip netns exec $S $PY -m http.server --bind :: --directory "$DOCS" $HPORT \
  >"$WORK/http.log" 2>&1 &

in_c() { ip netns exec $C "$@"; }
resolves_to() { [ "$(in_c getent ahostsv6 $NAME | awk 'NR==1 {print $1}')" = "$1" ]; }
listening() { ip netns exec $S ss -Htln "sport = :$1" | grep -q .; }
await 10 resolves_to $A6 || fail "dnsmasq does not answer AAAA: $(cat "$WORK/dnsmasq.log")"
await 10 listening $TPORT || fail "TCP server: $(cat "$WORK/socat.log")"
await 10 listening $HPORT || fail "HTTP server: $(cat "$WORK/http.log")"

# Bytes received from the TCP server at [$1].
tcp_bytes() { in_c socat -u "TCP6:[$1]:$TPORT,connect-timeout=5" - 2>/dev/null | wc -c; }
# "<status> <remote ip>" of GET $1 (curl picks the family from the URL).
http() { in_c curl -sS --max-time 5 -o "$WORK/body" -w '%{http_code} %{remote_ip}' "$1"; }
# Requests for $1 the HTTP server logged.
served() { grep -c "GET $1 " "$WORK/http.log" || true; }

fault_on() {
  ip netns exec $C "$DRIVER" spec "$1" "$2" >"$WORK/$1.out" 2>"$WORK/$1.err" &
  DRV=$!
  await 20 grep -q ready "$WORK/$1.out" || fail "$1: not applied: $(cat "$WORK/$1.err")"
}
fault_off() {
  kill "$DRV"
  wait "$DRV" || fail "$1: revert failed: $(cat "$WORK/$1.err")"
  tail -n 1 "$WORK/$1.out" >"$WORK/$1.json"
  no_tables || fail "$1: revert left $(in_c nft list tables)"
}
evidence() { jq -r ".evidence.$2 // \"0\"" "$WORK/$1.json"; }
nonzero() { jq -c '.evidence | with_entries(select(.value != "0"))' "$WORK/$1.json"; }
no_tables() { ! in_c nft list tables | grep -q faultline_; }

# --- Negative control: everything flows directly before any fault.
[ "$(tcp_bytes $A6)" -eq 100000 ] || fail "control: TCP over IPv6 did not deliver the file"
[ "$(http "http://[$A6]:$HPORT/index.txt")" = "200 $A6" ] || fail "control: HTTP over IPv6"
[ "$(http "http://$NAME:$HPORT/index.txt")" = "200 $A6" ] || fail "control: HTTP by name"
[ "$(http "http://$A4:$HPORT/index.txt")" = "200 $A4" ] || fail "control: HTTP over IPv4"
pass "control: TCP and HTTP over IPv6 and IPv4 answer directly"

# --- A toxic over IPv6, by address (a CIDR): limit_data lets exactly 1000 bytes through.
fault_on limit6 '{"dependency": {"match": {"cidrs": ["fd77:6::/64"], "remotePorts": ['$TPORT']},
  "toxics": [{"direction": "DOWNSTREAM", "limitData": {"bytes": 1000}}]}}'
in_c nft list ruleset >"$WORK/limit6.ruleset"
grep -q "ip6 daddr @peers6 .*redirect to :" "$WORK/limit6.ruleset" ||
  fail "limit6: no IPv6 redirect rule: $(cat "$WORK/limit6.ruleset")"
got=$(tcp_bytes $A6)
[ "$got" -eq 1000 ] || fail "limit_data over IPv6: received $got bytes, want 1000"
fault_off limit6
[ "$(evidence limit6 connections_limited)" -ge 1 ] || fail "limit6: evidence $(cat "$WORK/limit6.json")"
[ "$(evidence limit6 connections_redirected)" -ge 1 ] || fail "limit6: nothing redirected"
[ "$(tcp_bytes $A6)" -eq 100000 ] || fail "limit6: the file is still cut after revert"
pass "limit_data over IPv6: 1000 of 100000 bytes, then the close; full file after revert ($(nonzero limit6))"

# --- An HTTP abort over IPv6, by a host name with an AAAA record only.
fault_on abort6 '{"dependency": {"match": {"hosts": ["'$NAME'"], "remotePorts": ['$HPORT'],
  "resolveIntervalMs": 200}, "http": {"aborts": [{"status": 503, "percent": 100,
  "body": "throttled over v6"}], "pathPrefix": "/abort"}}}'
before=$(served /abort/1)
[ "$(http "http://$NAME:$HPORT/abort/1")" = "503 $A6" ] || fail "abort by name: $(cat "$WORK/body")"
[ "$(cat "$WORK/body")" = "throttled over v6" ] || fail "abort: body '$(cat "$WORK/body")'"
[ "$(served /abort/1)" -eq "$before" ] || fail "abort: the request reached the server"
# Outside the path prefix the request goes through the proxy to the server (which logs it).
before=$(served /index.txt)
[ "$(http "http://[$A6]:$HPORT/index.txt")" = "200 $A6" ] || fail "abort6: /index.txt"
grep -q "hello from p6-s" "$WORK/body" || fail "abort6: /index.txt body"
[ "$(served /index.txt)" -eq $((before + 1)) ] || fail "abort6: the server did not log /index.txt"
# The name moves to another AAAA address while the fault is active: the fault follows it.
echo "$B6 $NAME" >"$HOSTS"
kill -HUP $DNSMASQ
await 10 resolves_to $B6 || fail "dnsmasq did not take the new address"
aborted_at() { [ "$(http "http://[$1]:$HPORT/abort/2")" = "503 $1" ]; }
await 10 aborted_at $B6 || fail "abort6: the new address $B6 is not faulted after the DNS change"
out=$(http "http://[$A6]:$HPORT/abort/3")
[ "$out" = "200 $A6" ] || fail "abort6: the old address $A6 is still faulted: $out $(cat "$WORK/body")"
fault_off abort6
[ "$(evidence abort6 requests_aborted)" -ge 2 ] || fail "abort6: evidence $(cat "$WORK/abort6.json")"
[ "$(evidence abort6 resolution_changes)" -ge 1 ] || fail "abort6: no resolution change recorded"
[ "$(http "http://[$B6]:$HPORT/abort/4")" = "200 $B6" ] || fail "abort6: still aborted after revert"
pass "http abort 503 over IPv6 by AAAA name, client dialled $A6 itself, fault followed the name to $B6 ($(nonzero abort6))"

# --- Mixed: one fault naming an IPv4 and an IPv6 address aborts on both.
fault_on mixed '{"dependency": {"match": {"cidrs": ["'$A4'", "'$A6'"], "remotePorts": ['$HPORT']},
  "http": {"aborts": [{"status": 503, "percent": 100}]}}}'
[ "$(http "http://$A4:$HPORT/index.txt")" = "503 $A4" ] || fail "mixed: IPv4 not aborted"
[ "$(http "http://[$A6]:$HPORT/index.txt")" = "503 $A6" ] || fail "mixed: IPv6 not aborted"
[ "$(http "http://[$B6]:$HPORT/index.txt")" = "200 $B6" ] || fail "mixed: $B6 is not named"
fault_off mixed
[ "$(evidence mixed requests_aborted)" -eq 2 ] || fail "mixed: evidence $(cat "$WORK/mixed.json")"
[ "$(http "http://$A4:$HPORT/index.txt")" = "200 $A4" ] || fail "mixed: IPv4 after revert"
[ "$(http "http://[$A6]:$HPORT/index.txt")" = "200 $A6" ] || fail "mixed: IPv6 after revert"
pass "one fault on $A4 and $A6: both aborted, $B6 untouched; direct again after revert"

# --- Without IPv6 loopback in the namespace the proxy has no [::1] listener: a fault on an IPv6
# peer is refused (it could redirect nothing) and leaves nothing behind; IPv4 still works.
in_c sysctl -qw net.ipv6.conf.lo.disable_ipv6=1
if in_c "$DRIVER" spec nolo6 '{"dependency": {"match": {"cidrs": ["'$A6'"], "remotePorts": ['$HPORT']},
  "http": {"aborts": [{"status": 503, "percent": 100}]}}}' >"$WORK/nolo6.out" 2>"$WORK/nolo6.err"; then
  fail "nolo6: a fault on an IPv6 peer was applied without IPv6 loopback"
fi
grep -q "cannot listen on \[::1\]" "$WORK/nolo6.err" || fail "nolo6: unclear error: $(cat "$WORK/nolo6.err")"
no_tables || fail "nolo6: the refused fault left $(in_c nft list tables)"
fault_on nolo4 '{"dependency": {"match": {"cidrs": ["'$A4'"], "remotePorts": ['$HPORT']},
  "http": {"aborts": [{"status": 503, "percent": 100}]}}}'
[ "$(http "http://$A4:$HPORT/index.txt")" = "503 $A4" ] || fail "nolo4: IPv4 not aborted"
fault_off nolo4
pass "no IPv6 loopback: a fault on $A6 is refused ($(tail -n 1 "$WORK/nolo6.err")), IPv4 faults still work"
