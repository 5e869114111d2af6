#!/usr/bin/env bash
# Faults inside a workload's network namespace, without moving the agent (issue 14, item 3).
# Real kernel namespaces stand for the workloads: fl-ws-a (the target), fl-ws-b (a sibling) and
# fl-ws-h, where the agent runs (its "host"). Each has its own dnsmasq on 127.0.0.1 answering
# ws.fl.test, and A and B each a veth to H. Faults are applied through the agent's FaultManager
# and backends behind WorkloadRouter (bench/workload_fault_driver apply ...), with the workload
# named by its netns path and recorded identity (dev/ino), as discovery resolves it.
#   - DNS: a query from inside A is faulted; a name that is not faulted still resolves inside A
#     (the interceptor's upstream socket lives in A); B and H resolve normally; revert leaves no
#     faultline_* table in A.
#   - network blackhole: A cannot reach H; B reaches H; revert restores A.
#   - dependency: connections from A to H's port are reset by the proxy in A; B's are not.
#   - process kill: only A's processes of that name die, never B's or H's.
#   - a path that names another namespace than the recorded one is refused.
#   - restart policy: A recreated during its DNS fault gets the fault again (workload_restarts).
#   - kill -9 of the driver mid-fault: faultline-agent started on its state dir reverts inside A
#     from the journal; a fault whose namespace is gone meanwhile is reported gone, not an error.
# Takes the sandbox lock through lib.sh (never overlaps other network tests); no sandbox.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
DRIVER="$BIN/workload_fault_driver" ECHO="$BIN/net_echo"
for b in "$DRIVER" "$ECHO" "$BIN/faultline-agent"; do [ -x "$b" ] || fail "build $(basename "$b") first"; done
A=fl-ws-a B=fl-ws-b H=fl-ws-h PORT=15420
NAME=ws.fl.test OTHER=other.fl.test

scratch_down() {
  for ns in $A $B $H; do ip netns del $ns 2>/dev/null || true; rm -rf /etc/netns/$ns; done
}
trap 'rc=$?; jobs -p | xargs -r kill -9 2>/dev/null || true; wait 2>/dev/null; scratch_down; rm -rf "$WORK"; exit $rc' EXIT
scratch_down
for ns in $A $B $H; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add wsa netns $H type veth peer name eth0 netns $A
ip link add wsb netns $H type veth peer name eth0 netns $B
ip -n $H addr add 10.99.71.1/24 dev wsa; ip -n $A addr add 10.99.71.2/24 dev eth0
ip -n $H addr add 10.99.72.1/24 dev wsb; ip -n $B addr add 10.99.72.2/24 dev eth0
for l in "$H wsa" "$H wsb" "$A eth0" "$B eth0"; do ip -n ${l% *} link set ${l#* } up; done
printf '10.99.71.1 %s\n10.99.71.1 %s\n' $NAME $OTHER >"$WORK/hosts"
chmod a+rx "$WORK"
declare -A DNSMASQ_PID
for ns in $A $B $H; do scratch_dnsmasq $ns "$WORK/hosts" "$WORK/dnsmasq-$ns.log"; DNSMASQ_PID[$ns]=$DNSMASQ; done
ip netns exec $H "$ECHO" serve $PORT >"$WORK/echo.log" 2>&1 &

resolve() { ip netns exec "$1" dig +short +time=1 +tries=1 "$2" A 2>/dev/null; }
rcode() { ip netns exec "$1" dig +time=1 +tries=1 "$2" A 2>/dev/null | awk '/status:/ {print $6}' | tr -d ,; }
resolves() { [ "$(resolve "$1" "$2")" = 10.99.71.1 ]; }
# TCP connect outcome from NS to ADDR within 1 s: ok | refused | timeout.
connect() {
  set +e
  timeout 1 ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$PORT" 2>/dev/null
  local rc=$?
  set -e
  case $rc in 0) echo ok ;; 124) echo timeout ;; *) echo refused ;; esac
}
for ns in $A $B $H; do await 10 resolves $ns $NAME || fail "dnsmasq in $ns: $(cat "$WORK/dnsmasq-$ns.log")"; done
await 10 test "$(connect $A 10.99.71.1)" = ok || fail "echo server from A"
await 10 test "$(connect $B 10.99.72.1)" = ok || fail "echo server from B"

workload() {  # workload NS [DEV INO]: the resolved_workload JSON of NS (its recorded identity)
  local p=/run/netns/$1 id
  id=$(stat -L -c '%d %i' "$p")
  local dev=${2:-${id% *}} ino=${3:-${id#* }}
  echo '{"kind": "netns", "id": "'$p'", "name": "'$1'", "netnsPath": "'$p'", "netnsDev": "'$dev'", "netnsIno": "'$ino'"}'
}
STATE="$WORK/state"
fault_on() {  # fault_on ID SPEC_JSON [WORKLOAD_JSON]
  local req='{"faultId": "'$1'", "spec": '$2
  [ -n "${3:-}" ] && req+=', "resolvedWorkload": '$3
  req+='}'
  ip netns exec $H "$DRIVER" apply "$STATE" "$req" >"$WORK/$1.out" 2>"$WORK/$1.err" &
  DRV=$!
  await 20 grep -q ready "$WORK/$1.out" || fail "$1: not applied: $(cat "$WORK/$1.err")"
}
fault_off() { kill "$DRV"; wait "$DRV" || fail "$1: revert failed: $(cat "$WORK/$1.err")"; tail -n 1 "$WORK/$1.out" >"$WORK/$1.json"; }
evidence() { jq -r ".evidence.$2 // \"0\"" "$WORK/$1.json"; }
ruleset_has_faultline() { ip netns exec "$1" nft list ruleset | grep -q 'table .* faultline_'; }

# --- DNS inside A.
fault_on wsdns '{"dns": {"domains": ["'$NAME'"], "mode": "NXDOMAIN"}}' "$(workload $A)"
[ "$(rcode $A $NAME)" = NXDOMAIN ] || fail "dns: $NAME from inside A is not faulted"
resolves $A $OTHER || fail "dns: a name without a fault does not resolve inside A (upstream not in A?)"
resolves $B $NAME || fail "dns: the sibling B is affected"
resolves $H $NAME || fail "dns: the agent's host is affected"
has_fault_table $A || fail "dns: no faultline_* table inside A"
no_fault_table $H || fail "dns: a table on the host: $(fault_tables $H)"
no_fault_table $B || fail "dns: a table in B: $(fault_tables $B)"
fault_off wsdns
[ "$(evidence wsdns queries_faulted)" -ge 1 ] || fail "dns: evidence $(cat "$WORK/wsdns.json")"
! ruleset_has_faultline $A || fail "dns: revert left a faultline table in A: $(ip netns exec $A nft list ruleset)"
resolves $A $NAME || fail "dns: A does not resolve after revert"
pass "dns fault inside A only ($(jq -c .evidence "$WORK/wsdns.json"))"

# --- Network blackhole inside A.
fault_on wsnet '{"network": {"blackhole": {}, "match": {"cidrs": ["10.99.71.1"], "protocol": "TCP"}}}' "$(workload $A)"
[ "$(connect $A 10.99.71.1)" = timeout ] || fail "network: A still reaches H"
[ "$(connect $B 10.99.72.1)" = ok ] || fail "network: the sibling B is cut"
no_fault_table $H || fail "network: a table on the host: $(fault_tables $H)"
fault_off wsnet
! ruleset_has_faultline $A || fail "network: revert left a faultline table in A"
[ "$(connect $A 10.99.71.1)" = ok ] || fail "network: A does not reach H after revert"
pass "network blackhole inside A only ($(jq -c .evidence "$WORK/wsnet.json"))"

# --- Dependency inside A: the proxy (listener and upstream connects in A) resets the peer.
fault_on wsdep '{"dependency": {"match": {"cidrs": ["10.99.71.1"], "remotePorts": ['$PORT']},
  "toxics": [{"resetPeer": {}}]}}' "$(workload $A)"
dep_broken() { ip netns exec $A timeout 2 bash -c "exec 3<>/dev/tcp/10.99.71.1/$PORT; echo hi >&3; read -t 1 line <&3" 2>/dev/null && return 1 || return 0; }
dep_works() { ip netns exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$PORT; echo hi >&3; read -t 1 line <&3; [ \"\$line\" = hi ]" 2>/dev/null; }
dep_broken || fail "dependency: A's connection to H is not reset"
dep_works $B 10.99.72.1 || fail "dependency: the sibling B's connection is affected"
no_fault_table $H || fail "dependency: a table on the host"
fault_off wsdep
! ruleset_has_faultline $A || fail "dependency: revert left a faultline table in A"
dep_works $A 10.99.71.1 || fail "dependency: A's connection broken after revert"
pass "dependency fault inside A only ($(jq -c .evidence "$WORK/wsdep.json"))"

# --- Process kill: only A's processes of that name.
cp /bin/sleep "$WORK/flwsproc"
declare -A PROC
for ns in $A $B $H; do ip netns exec $ns "$WORK/flwsproc" 600 & PROC[$ns]=$!; done
fault_on wsproc '{"process": {"action": "KILL", "name": "flwsproc"}}' "$(workload $A)"
await 5 bash -c "! kill -0 ${PROC[$A]} 2>/dev/null" || fail "process: A's process survived"
kill -0 "${PROC[$B]}" || fail "process: the sibling B's process was killed"
kill -0 "${PROC[$H]}" || fail "process: the host's process was killed"
fault_off wsproc
[ "$(evidence wsproc processes_signalled)" = 1 ] || fail "process: evidence $(cat "$WORK/wsproc.json")"
pass "process kill inside A only ($(jq -c .evidence "$WORK/wsproc.json"))"

# --- A path that names another namespace than the recorded one is refused (nothing applied).
wrong=$(workload $A "$(stat -L -c %d /run/netns/$B)" "$(stat -L -c %i /run/netns/$B)")
set +e
ip netns exec $H "$DRIVER" apply "$STATE" '{"faultId": "wswrong", "spec": {"dns": {"domains":
  ["'$NAME'"], "mode": "NXDOMAIN"}}, "resolvedWorkload": '"$wrong"'}' >"$WORK/wrong.out" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "a path naming another namespace was accepted"
grep -q "not the recorded namespace" "$WORK/wrong.out" || fail "refusal reason: $(cat "$WORK/wrong.out")"
no_fault_table $A && no_fault_table $B || fail "the refused apply left a table"
pass "a netns path that no longer names the recorded namespace is refused"

# --- Restart policy: A restarted during its fault (its netns path now names a new namespace)
# gets the fault again; the evidence counts the restart.
fault_on wsrestart '{"dns": {"domains": ["'$NAME'"], "mode": "NXDOMAIN"}}' "$(workload $A)"
[ "$(rcode $A $NAME)" = NXDOMAIN ] || fail "restart: not faulted before the restart"
kill "${DNSMASQ_PID[$A]}"
ip netns del $A
ip netns add $A
ip -n $A link set lo up
scratch_dnsmasq $A "$WORK/hosts" "$WORK/dnsmasq-$A-2.log"
await 10 has_fault_table $A || fail "restart: the fault did not follow A into its new namespace"
await 10 test "$(rcode $A $NAME)" = NXDOMAIN || fail "restart: the new instance of A is not faulted"
resolves $A $OTHER || fail "restart: pass-through broken in the new instance of A"
fault_off wsrestart
[ "$(evidence wsrestart workload_restarts)" = 1 ] || fail "restart: evidence $(cat "$WORK/wsrestart.json")"
! ruleset_has_faultline $A || fail "restart: revert left a table in the new A"
resolves $A $NAME || fail "restart: A does not resolve after revert"
pass "a restarted workload gets the fault again ($(jq -c .evidence "$WORK/wsrestart.json"))"

# --- kill -9 mid-fault: the journal reverts inside A; B's namespace is gone meanwhile.
fault_on wscrash '{"dns": {"domains": ["'$NAME'"], "mode": "NXDOMAIN"}}' "$(workload $A)"
crash_pid=$DRV
fault_on wsgone '{"dns": {"domains": ["'$NAME'"], "mode": "NXDOMAIN"}}' "$(workload $B)"
kill -9 "$crash_pid" "$DRV"
wait "$crash_pid" "$DRV" 2>/dev/null || true
has_fault_table $A || fail "crash: the table vanished with the driver: nothing to recover"
ip netns del $B  # the workload B is removed while its fault's agent is down
ip netns exec $H "$BIN/faultline-agent" --insecure --listen 127.0.0.1:0 --name $H \
  --state-dir "$STATE" --ready-file "$WORK/agent.ready" >"$WORK/agent.log" 2>&1 &
AGENT=$!
await 30 test -s "$WORK/agent.ready" || { cat "$WORK/agent.log"; fail "agent did not start"; }
! ruleset_has_faultline $A || fail "crash: the restarted agent did not revert inside A: $(fault_tables $A)"
resolves $A $NAME || fail "crash: A does not resolve after the journal revert"
grep -q "wsgone.*went with its workload" "$WORK/agent.log" || fail "crash: B's fault not reported gone: $(cat "$WORK/agent.log")"
grep -q ", 0 failed," "$WORK/agent.log" || fail "crash: recovery reported a failure: $(grep -i recovery "$WORK/agent.log")"
[ -z "$(find "$STATE/journal" -mindepth 1 -maxdepth 1 ! -name '*corrupt*')" ] || fail "crash: journal records left: $(ls "$STATE/journal")"
kill "$AGENT"; wait "$AGENT" || true
pass "kill -9 mid-fault: the restarted agent reverted inside A; B's fault reported gone with B"
