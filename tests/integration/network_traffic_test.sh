#!/usr/bin/env bash
# Network faults observed from real traffic between scratch hosts (namespaces nz-c, nz-s1, nz-s2
# joined by veths; a dnsmasq of our own answers for svc.nz.test): faults are applied in nz-c through
# the agent's FaultManager and NetworkBackend (bench/net_fault_driver spec ...):
#   - a fault on a host name follows a DNS change while active (dnsmasq hosts file + SIGHUP);
#   - direction: egress drops before the peer sees anything, ingress lets the peer receive and
#     drops its replies (packet counters on both sides, not timings);
#   - loss (independent in nftables, correlated in the delay line) and bandwidth, within
#     statistical bounds;
#   - applying the same fault id twice is idempotent and reverting leaves nft ruleset, xtables raw
#     rules and tc qdiscs exactly as before.
# Takes the sandbox lock through lib.sh (so it never overlaps other network tests), but does not
# bring up the sandbox.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
DRIVER="$BIN/net_fault_driver" ECHO="$BIN/net_echo"
for b in "$DRIVER" "$ECHO"; do [ -x "$b" ] || fail "build $(basename "$b") first"; done
C=nz-c S1=nz-s1 S2=nz-s2 IP1=10.99.1.2 IP2=10.99.2.2 PORT=15410 IPORT=15411
HOSTS="$WORK/hosts" NAME=svc.nz.test

scratch_down() {
  for ns in $C $S1 $S2; do ip netns del $ns 2>/dev/null || true; done
  rm -rf /etc/netns/$C
}
trap 'rc=$?; jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null; scratch_down; exit $rc' EXIT
scratch_down
for ns in $C $S1 $S2; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add nz-c1 netns $C type veth peer name nz-s1v netns $S1
ip link add nz-c2 netns $C type veth peer name nz-s2v netns $S2
ip -n $C addr add 10.99.1.1/24 dev nz-c1; ip -n $S1 addr add $IP1/24 dev nz-s1v
ip -n $C addr add 10.99.2.1/24 dev nz-c2; ip -n $S2 addr add $IP2/24 dev nz-s2v
for l in "$C nz-c1" "$C nz-c2" "$S1 nz-s1v" "$S2 nz-s2v"; do ip -n ${l% *} link set ${l#* } up; done
# nz-c resolves through our dnsmasq (ip netns exec binds /etc/netns/nz-c/resolv.conf).
echo "$IP1 $NAME" >"$HOSTS"
scratch_dnsmasq $C "$HOSTS" "$WORK/dnsmasq.log"
for s in "$S1 $IP1" "$S2 $IP2"; do
  ip netns exec ${s% *} "$ECHO" serve $PORT >"$WORK/echo-${s% *}.log" 2>&1 &
done
ip netns exec $S2 iperf3 -s -p $IPORT >"$WORK/iperf.log" 2>&1 &
resolves_to() { [ "$(ip netns exec $C getent ahostsv4 $NAME | awk 'NR==1 {print $1}')" = "$1" ]; }
serving() { ip netns exec $C bash -c "exec 3<>/dev/tcp/$1/$PORT" 2>/dev/null; }
await 10 resolves_to $IP1 || fail "dnsmasq does not answer: $(cat "$WORK/dnsmasq.log")"
await 10 serving $IP1 || fail "echo server on $IP1"
await 10 serving $IP2 || fail "echo server on $IP2"
await 10 ip netns exec $C bash -c "exec 3<>/dev/tcp/$IP2/$IPORT" 2>/dev/null || fail "iperf3 server"

# Fault helpers: apply spec JSON $2 with id $1 (apply count $3) in nz-c; stop prints final status.
fault_on() {
  ip netns exec $C "$DRIVER" spec "$1" "$2" "${3:-1}" >"$WORK/$1.out" 2>"$WORK/$1.err" &
  DRV=$!
  await 20 grep -q ready "$WORK/$1.out" || fail "$1: not applied: $(cat "$WORK/$1.err")"
}
fault_off() { kill "$DRV"; wait "$DRV" || fail "$1: revert failed: $(cat "$WORK/$1.err")"; tail -n 1 "$WORK/$1.out" >"$WORK/$1.json"; }
evidence() { jq -r ".evidence.$2 // \"0\"" "$WORK/$1.json"; }
# Connect outcome within 1 s: ok | refused | timeout.
connect() {
  set +e
  timeout 1 ip netns exec $C bash -c "exec 3<>/dev/tcp/$1/$PORT" 2>/dev/null
  local rc=$?
  set -e
  case $rc in 0) echo ok ;; 124) echo timeout ;; *) echo refused ;; esac
}
is_cut() { [ "$(connect "$1")" = timeout ]; }

# --- Host name re-resolution: the fault follows the name to its new address while active.
fault_on dnsfollow '{"network": {"blackhole": {}, "match": {"hosts": ["'$NAME'"],
  "protocol": "TCP", "resolveIntervalMs": 200}}}'
[ "$(connect $IP1)" = timeout ] || fail "hosts: $NAME ($IP1) not blackholed"
[ "$(connect $IP2)" = ok ] || fail "hosts: $IP2 blackholed before the DNS change"
echo "$IP2 $NAME" >"$HOSTS"
kill -HUP $DNSMASQ
await 10 resolves_to $IP2 || fail "dnsmasq did not take the new address"
await 5 is_cut $IP2 || fail "hosts: the new address $IP2 is not faulted after the DNS change"
[ "$(connect $IP1)" = ok ] || fail "hosts: the old address $IP1 is still faulted"
fault_off dnsfollow
[ "$(evidence dnsfollow resolution_changes)" -ge 1 ] || fail "hosts: no resolution_changes"
pass "host name re-resolved while active: $IP1 -> $IP2 faulted, $IP1 released ($(jq -c .evidence "$WORK/dnsfollow.json"))"

# --- Direction, from packet counts: UDP to S1's echo; count what S1 receives (nft counter there).
ip netns exec $S1 nft -f - <<EOF
table inet nz_count {
  counter rx {}
  chain in { type filter hook input priority 0; policy accept; udp dport $PORT counter name "rx"; }
}
EOF
s1_rx() { ip netns exec $S1 nft list counter inet nz_count rx | awk '/packets/ {print $2}'; }
for dir in EGRESS INGRESS; do
  id=dir_${dir,,}
  fault_on $id '{"network": {"blackhole": {}, "match": {"direction": "'$dir'",
    "protocol": "UDP", "cidrs": ["'$IP1'"], "remotePorts": ['$PORT']}}}'
  before=$(s1_rx)
  ip netns exec $C "$ECHO" send $IP1 $PORT 200 >/dev/null
  got=$(( $(s1_rx) - before ))
  fault_off $id
  if [ $dir = EGRESS ]; then
    [ "$got" -eq 0 ] || fail "egress blackhole: $IP1 still received $got packets"
  else
    [ "$got" -eq 200 ] || fail "ingress blackhole: $IP1 received $got of 200 (egress was cut)"
  fi
  [ "$(evidence $id packets_dropped)" -ge 200 ] || fail "$dir: evidence $(cat "$WORK/$id.json")"
done
# Ingress only: requests reach the peer but its replies are dropped (TCP: SYN-ACK lost = timeout).
fault_on dir_in_tcp '{"network": {"blackhole": {}, "match": {"direction": "INGRESS",
  "protocol": "TCP", "cidrs": ["'$IP1'"]}}}'
[ "$(connect $IP1)" = timeout ] || fail "ingress blackhole: TCP connect did not time out"
[ "$(connect $IP2)" = ok ] || fail "ingress blackhole on $IP1 also cut $IP2"
fault_off dir_in_tcp
pass "direction: egress drops before the peer (0/200 received), ingress lets it receive (200/200) and drops replies"

# --- Loss from traffic. N packets, each dropped with p: received/N within 5 sigma of 1 - p
# (binomial; correlated loss inflates the variance by (1 + c) / (1 - c)).
within() {  # got n p c -> success if |got/n - (1-p)| <= 5 sigma
  awk -v g="$1" -v n="$2" -v p="$3" -v c="$4" 'BEGIN {
    s = sqrt(n * p * (1 - p) * (1 + c) / (1 - c)); d = g - n * (1 - p); if (d < 0) d = -d
    exit !(d <= 5 * s) }'
}
N=4000
for spec in "indep 30 0" "corr 30 60"; do
  read -r label pct corr <<<"$spec"
  fault_on loss_$label '{"network": {"loss": {"percent": '$pct', "correlationPercent": '$corr'},
    "match": {"direction": "EGRESS", "protocol": "UDP", "cidrs": ["'$IP1'"]}}}'
  before=$(s1_rx)
  ip netns exec $C "$ECHO" send $IP1 $PORT $N >/dev/null
  fault_off loss_$label  # releases anything the delay line still holds
  got=$(( $(s1_rx) - before ))
  c=$(awk -v c=$corr 'BEGIN {print c / 100}')
  within "$got" $N 0.$pct "$c" || fail "loss $label: $got of $N received, expected ~$((N * (100 - pct) / 100))"
  dropped=$(evidence loss_$label packets_dropped)
  [ $(( got + dropped )) -eq $N ] || fail "loss $label: received $got + dropped $dropped != sent $N"
  pass "loss $pct% (correlation $corr%): $got of $N received, evidence dropped $dropped"
done
[ "$(evidence loss_corr fidelity_compromised)" = 0 ] || fail "correlated loss: fidelity compromised: $(cat "$WORK/loss_corr.json")"

# --- Bandwidth: TCP through a 2 Mbit/s policer (token bucket: rate + burst) runs at about the
# rate: between 10% (TCP backs off after policer drops, but keeps moving) and 150% of it
# (receiver-side interval, headers), far below the bare link.
RATE=250000
iperf() { ip netns exec $C iperf3 -c $IP2 -p $IPORT -t 3 -J | jq '.end.sum_received | .bytes / .seconds'; }
bare=$(iperf)
fault_on bw '{"network": {"bandwidth": {"rateBytesPerSecond": '$RATE'},
  "match": {"protocol": "TCP", "cidrs": ["'$IP2'"]}}}'
limited=$(iperf)
fault_off bw
awk -v l="$limited" -v r=$RATE 'BEGIN {exit !(l >= 0.1 * r && l <= 1.5 * r)}' ||
  fail "bandwidth: $limited B/s through a $RATE B/s limit"
awk -v l="$limited" -v b="$bare" 'BEGIN {exit !(b > 4 * l)}' ||
  fail "bandwidth: negative control: bare link $bare B/s is not well above $limited B/s"
[ "$(evidence bw packets_dropped)" -gt 0 ] || fail "bandwidth: nothing policed"
pass "bandwidth: $limited B/s at a $RATE B/s limit (bare link $bare B/s)"

# --- Same fault id twice, then revert: no residue.
state() {
  ip netns exec $C nft list ruleset
  echo "--- raw4"; ip netns exec $C iptables-nft -w -t raw -S 2>/dev/null || true
  echo "--- raw6"; ip netns exec $C ip6tables-nft -w -t raw -S 2>/dev/null || true
  echo "--- qdisc"; ip netns exec $C tc qdisc show
}
before=$(state)
for spec in \
  'twice_bh {"network": {"blackhole": {}, "match": {"cidrs": ["'$IP1'"]}}}' \
  'twice_lat {"network": {"latency": {"delayUs": 20000}, "match": {"direction": "BOTH", "cidrs": ["'$IP1'"]}}}' \
  'twice_loss {"network": {"loss": {"percent": 5, "correlationPercent": 20}, "match": {"cidrs": ["'$IP2'"]}}}'; do
  id=${spec%% *}
  fault_on $id "${spec#* }" 2
  [ "$(ip netns exec $C nft list tables | grep -c "faultline_$id\$")" -eq 1 ] || fail "$id: table count after two applies"
  queued=$(ip netns exec $C iptables-nft -w -t raw -S 2>/dev/null | grep -c "faultline_$id" || true)
  case $id in
    twice_bh) [ "$queued" -eq 0 ] || fail "$id: unexpected NFQUEUE rules" ;;
    *) [ "$queued" -eq 2 ] || fail "$id: expected 2 NFQUEUE rules (OUTPUT, PREROUTING), got $queued" ;;
  esac
  [ "$id" != twice_lat ] || [ "$(connect $IP1)" = ok ] || fail "$id: traffic does not flow under latency"
  fault_off $id
done
after=$(state)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "residue after revert"; }
pass "same fault id applied twice is one fault; revert leaves nft, xtables raw and tc as before"
