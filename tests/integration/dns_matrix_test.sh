#!/usr/bin/env bash
# Each DNS fault mode, matching rule, transport and scope, asserted with dig from fl-app while
# tests/integration/testdata/dns-matrix.yaml runs: SERVFAIL over UDP, TCP and IPv6; suffix and
# wildcard matching; a record-type rule (AAAA refused, A passes); a CNAME whose target matches;
# delay; drop; probability; spoof scoped to a uid and to a cgroup v2 path (processes outside the
# scope pass through); a query to another resolver than fl-app's configured one (a dnsmasq on
# 127.0.0.53 and [::1] in fl-app) reaches that resolver over UDP and TCP, IPv4 and IPv6; a packet
# mark the host sets on DNS (policy routing) survives the redirect and does not make the
# interceptor's own queries loop. Then the per-fault evidence.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
EXP="$ROOT/tests/integration/testdata/dns-matrix.yaml"
S=sandbox.test

# The cgroup the scoped fault names, at the cgroup v2 root wherever this host mounts it.
CG2=/sys/fs/cgroup; [ -f $CG2/cgroup.controllers ] || CG2=/sys/fs/cgroup/unified
[ -f $CG2/cgroup.controllers ] || fail "no cgroup v2 hierarchy on this host"
mkdir -p "$CG2/dnschaos-it"
# lib.sh's cleanup reads the exit status from $? and kills background jobs (the resolver below).
# set +e first: under errexit `(exit $rc)` would end the trap before cleanup, leaving the sandbox
# (and the sandbox lock, which its processes inherit) behind.
trap 'rc=$?; set +e; rmdir "$CG2/dnschaos-it" 2>/dev/null; ip netns exec fl-app nft delete table inet itmark 2>/dev/null; (exit $rc); cleanup' EXIT

sandbox_up --failover auto
# Another resolver, only on fl-app's loopback, knowing one name fl-dns does not.
ip netns exec fl-app dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --listen-address=127.0.0.53,::1 --bind-interfaces --port=53 --pid-file= --user=nobody \
  --host-record=elsewhere.$S,10.9.9.9 2>"$WORK/other-dnsmasq.log" &
await 10 bash -c "[ \"\$(ip netns exec fl-app dig +short +time=1 +tries=1 @127.0.0.53 elsewhere.$S)\" = 10.9.9.9 ]" ||
  fail "the second resolver did not start"
"$BIN/faultline" run "$EXP" --report-json "$WORK/report.json" >"$WORK/out.txt" 2>"$WORK/err.txt" &
run=$!
d() { ip netns exec fl-app dig +time=2 +tries=1 "$@"; }
status() { d "$@" | sed -n -E 's/.*status: ([A-Z]+),.*/\1/p'; }
check() { local want=$1; shift; local got; got=$(status "$@"); [ "$got" = "$want" ] || fail "dig $*: $got, want $want"; }
active() { [ "$(status servfail.$S)" = SERVFAIL ]; }
await 30 active || { kill $run; fail "faults never took effect"; }
# Give the other faults' tables (applied in the same phase) a moment to be in place too.
await 10 bash -c "[ \"\$(ip netns exec fl-app nft list tables | grep -c faultline_)\" -ge 9 ]" ||
  fail "not every fault table appeared"
# Scope and pass-through first, the slow checks (delay, drop, probability) last: every check must
# land inside the faults' window even on a loaded machine; `active` at the end proves it did.
[ "$(ip netns exec fl-app setpriv --reuid=65534 --regid=65534 --clear-groups \
      dig +short +time=2 +tries=1 who.$S)" = 10.1.2.3 ] || fail "uid-scoped spoof not applied"
[ -z "$(d +short who.$S)" ] || fail "uid-scoped spoof leaked to root"
in_cg=$(sh -c 'echo $$ > "$1/dnschaos-it/cgroup.procs" && exec ip netns exec fl-app dig +short +time=2 +tries=1 "$2"' _ "$CG2" cg.$S)
[ "$in_cg" = 10.4.5.6 ] || fail "cgroup-scoped spoof not applied: '$in_cg'"
[ -z "$(d +short cg.$S)" ] || fail "cgroup-scoped spoof leaked outside the cgroup"
# Not matching any fault: reaches the resolver the client asked, not fl-app's configured one.
[ "$(d +short @127.0.0.53 elsewhere.$S)" = 10.9.9.9 ] || fail "UDP query did not reach 127.0.0.53"
[ "$(d +short +tcp @127.0.0.53 elsewhere.$S)" = 10.9.9.9 ] || fail "TCP query did not reach 127.0.0.53"
[ "$(d +short @::1 elsewhere.$S)" = 10.9.9.9 ] || fail "IPv6 UDP query did not reach [::1]"
[ "$(d +short +tcp @::1 elsewhere.$S)" = 10.9.9.9 ] || fail "IPv6 TCP query did not reach [::1]"
# The host marks every DNS packet (as a policy-routing setup would, in mangle): the redirected
# queries keep that mark, and the interceptor's forwarded queries, marked too, still get out.
ip netns exec fl-app nft -f - <<'NFT'
table inet itmark {
  counter kept {}
  counter lost {}
  chain pre {
    type filter hook output priority -150;
    udp dport 53 meta mark set 0x2a
  }
  chain post {
    type filter hook output priority 10;
    ct direction original ct status dnat meta l4proto udp meta mark 0x2a counter name kept
    ct direction original ct status dnat meta l4proto udp meta mark != 0x2a counter name lost
  }
}
NFT
[ "$(d +short @127.0.0.53 elsewhere.$S)" = 10.9.9.9 ] || fail "marked UDP query did not reach 127.0.0.53"
[ "$(d +short @::1 elsewhere.$S)" = 10.9.9.9 ] || fail "marked IPv6 UDP query did not reach [::1]"
check SERVFAIL servfail.$S                          # still faulted with the mark set
packets() { ip netns exec fl-app nft list counter inet itmark "$1" | sed -n -E 's/.*packets ([0-9]+).*/\1/p'; }
[ "$(packets kept)" -ge 3 ] && [ "$(packets lost)" -eq 0 ] ||
  fail "packet mark: kept $(packets kept), lost $(packets lost) (want >= 3 and 0)"
ip netns exec fl-app nft delete table inet itmark

check SERVFAIL servfail.$S
check SERVFAIL +tcp servfail.$S
check SERVFAIL @::1 servfail.$S                     # IPv6 query, redirected to [::1]
check REFUSED refused.$S                            # suffix: the name itself
check REFUSED Deep.Down.REFUSED.$S                  # suffix: any subdomain, any case
check NXDOMAIN notrefused.$S                        # negative control (dnsmasq's own answer)
check NOERROR a.wild.$S                             # wildcard: nodata
[ -z "$(d +short a.wild.$S)" ] || fail "nodata carried an answer"
check NXDOMAIN wild.$S                              # wildcard does not match its suffix itself
check REFUSED dynamodb.us-west-2.$S AAAA            # record type rule
[ "$(d +short dynamodb.us-west-2.$S A)" = 10.77.0.30 ] || fail "A of west should pass through"
check REFUSED dynamodb-alias.$S AAAA                # CNAME target matches the AAAA rule
[ "$(d +short dynamodb-alias.$S A | tail -n 1)" = 10.77.0.30 ] || fail "alias A should pass"
qt=$(d slow.$S | sed -n -E 's/;; Query time: ([0-9]+) msec/\1/p')
[ "${qt:-0}" -ge 550 ] || fail "delay: answered after ${qt} ms, want >= 550 (600 +- 50)"
check NXDOMAIN slow.$S                              # the upstream's own answer, late
d +short drop.$S >/dev/null 2>&1 && fail "drop: got an answer" || true
flaky=$(for _ in $(seq 1 40); do status flaky.$S; done | sort | uniq -c)
grep -q SERVFAIL <<<"$flaky" && grep -q NXDOMAIN <<<"$flaky" || fail "probability 50%: $flaky"
active || fail "the faults' window closed before the checks ended (machine too slow?)"
pass "every mode, match rule, transport and scope behaved as configured"

set +e; wait $run; rc=$?; set -e
cat "$WORK/err.txt" "$WORK/out.txt"
[ $rc -eq 0 ] || fail "run exit $rc"
R="$WORK/report.json"
ev() { jq -r --arg f "$1" --arg k "$2" '.faults[] | select(.name == $f) | .agents[0].evidence[$k]' "$R"; }
[ "$(ev servfail queries_faulted_servfail)" -ge 3 ] || fail "servfail evidence"
[ "$(ev west-aaaa-refused queries_faulted_via_cname)" -ge 1 ] || fail "cname evidence"
[ "$(ev flaky queries_passed)" -ge 1 ] && [ "$(ev flaky queries_faulted)" -ge 1 ] ||
  fail "probability evidence"
[ "$(ev flaky queries_seen)" -eq $(( $(ev flaky queries_passed) + $(ev flaky queries_faulted) )) ] ||
  fail "seen != passed + faulted"
no_fault_table fl-app || fail "fault tables left behind"
pass "evidence per fault: seen/faulted/passed by mode"
