#!/usr/bin/env bash
# Every fault kind on a real Podman container, through `faultline run` and the hosts' real agents
# (issue 14, Tests), on one `sandbox up --containers --container-replicas 2 --failover off`.
# Each fault names ONE container (workloads.names) and is asserted from INSIDE it (nsenter -n into
# its init process's network namespace, or its own service's answers), while its sibling container
# on the same host (same image, same process name) and the host itself are asserted unaffected,
# also through the run's own probe of the sibling (no failed sample). Each run is ended by Ctrl-C
# (exit 3, faults reverted) once the checks are done; then the container works again and nothing
# is left in its namespace, its sibling's or the hosts' (nft tables, qdiscs, extra listeners).
#   1. dns nodata of the kv endpoint inside fl-orders-1 (sibling fl-orders-2, host fl-app);
#   2. network partition from fl-kv-east-1 to the host's kv service (sibling fl-kv-east-2);
#   3. network latency 400ms on the same path (the connect from inside takes >= 400ms);
#   4. dependency: the proxy inside fl-orders-1 answers 503 for kv-east-1 (its listener only there);
#   5. process pause, then kill, of faultline-sample-kv in fl-kv-east-1 only (the sibling's and the
#      host's processes of that name are untouched); fl-kv-east-1 restarted during the pause (in
#      its namespace, which outlives it) has its new process paused too (workload_restarts 1);
#   6. kill -9 of fl-app's agent mid DNS drop in fl-orders-1: the restarted agent reverts
#      inside the container's netns from its journal (the journal is empty afterwards);
#   7. containers in Podman-managed namespaces on fl-db-west: one restarted during its DNS fault
#      gets the fault again in its new namespace (workload_restarts 1), one removed during it is
#      reported (workload_exited 1), the run PASSes, and nothing holds the removed namespace.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
command -v podman >/dev/null || fail "podman is not installed (scripts/lib.sh installs it)"
command -v nsenter >/dev/null || fail "nsenter is not installed"
CT="$SANDBOX_RUN/containers"
EASTC=dynamodb.us-east-1.containers.sandbox.test
KV_HOST_URL=http://10.77.0.20:8000/healthz  # the host fl-db-east's own kv service

sandbox_up --containers --container-replicas 2 --failover off

# The sandbox's Podman of HOST (its own state), e.g. podman_on fl-app inspect fl-orders-1.
podman_on() {  # podman_on HOST ARGS...
  local h=$1; shift
  env "CONTAINERS_CONF=$CT/$h/containers.conf" podman --root "$CT/$h/storage" --runroot "$CT/$h/run" "$@"
}
host_of() { case $1 in fl-orders-*) echo fl-app ;; fl-kv-east-*) echo fl-db-east ;; *) echo fl-db-west ;; esac; }
cpid() { podman_on "$(host_of "$1")" inspect -f '{{.State.Pid}}' "$1"; }
# Runs CMD in container NAME's network namespace (host tools, the container's network).
inside() {  # inside NAME CMD...
  local pid; pid=$(cpid "$1"); shift
  [ -n "$pid" ] && [ "$pid" != 0 ] || { echo "no running container" >&2; return 1; }
  nsenter -t "$pid" -n -- "$@"
}
# The answer (+short) and the rcode of A? NAME asked to the sandbox's dnsmasq from inside C.
answer_in() { inside "$1" dig +short +time=1 +tries=1 @10.77.0.2 "$2" A 2>/dev/null || true; }
rcode_in() { inside "$1" dig +time=1 +tries=1 @10.77.0.2 "$2" A 2>/dev/null | awk '/status:/ {print $6}' | tr -d , || true; }
nodata_in() { [ "$(rcode_in "$1" "$2")" = NOERROR ] && [ -z "$(answer_in "$1" "$2")" ]; }
resolves_in() { [ "$(answer_in "$1" "$2")" = 10.77.0.111 ]; }
# HTTP status of URL (000 when no answer within 1 s), from inside C or (C = -) from the root ns.
http_in() {  # http_in C URL
  local c=$1; shift
  if [ "$c" = - ]; then curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true
  else inside "$c" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true; fi
}
http_ok() { [ "$(http_in "$1" "$2")" = 200 ]; }
http_not_ok() { [ "$(http_in "$1" "$2")" != 200 ]; }
http_is() { [ "$(http_in "$2" "$3")" = "$1" ]; }  # http_is STATUS C URL
# TCP listening ports in C's namespace, sorted, space-separated.
listeners_in() { inside "$1" ss -Hltn | awk '{n = split($4, a, ":"); print a[n]}' | sort -n | tr '\n' ' '; }

# Nothing of any fault is left: no faultline_* table in the hosts or the root namespace; in every
# container namespace no nft rule at all, no netem qdisc and only the service's own listener.
expect_nothing_left() {  # expect_nothing_left WHAT
  local ns c
  for ns in fl-app fl-db-east fl-db-west; do
    no_fault_table "$ns" || fail "$1: fault table left on host $ns: $(fault_tables "$ns")"
  done
  ! nft list tables 2>/dev/null | grep -q faultline_ || fail "$1: fault table left in the root namespace"
  for c in fl-orders-1 fl-orders-2 fl-kv-east-1 fl-kv-east-2; do
    ns=fl-c-${c#fl-}
    [ -z "$(ip netns exec "$ns" nft list ruleset)" ] ||
      fail "$1: nft rules left in $c: $(ip netns exec "$ns" nft list ruleset)"
    ! tc -n "$ns" qdisc show | grep -q netem || fail "$1: netem qdisc left in $c: $(tc -n "$ns" qdisc show)"
    case $c in
      fl-orders-*) want="8080 " ;;
      *) want="8000 " ;;
    esac
    [ "$(listeners_in "$c")" = "$want" ] || fail "$1: listeners in $c: $(listeners_in "$c") (want $want)"
  done
}

# An experiment $WORK/NAME.yaml: fault `f` (its kind's YAML on stdin) on the container CONTAINER
# of the agents SELECTOR picks, for DURATION; the probe `sibling` (URL) must hold throughout.
write_exp() {  # write_exp NAME SELECTOR CONTAINER DURATION SIBLING_URL <FAULT_YAML
  {
    printf 'apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: %s}\ntargets:\n' "$1"
    printf '  t: {selector: %s, workloads: {runtime: docker, names: [%s]}, mode: all}\n' "$2" "$3"
    printf 'faults:\n  - name: f\n    target: t\n    duration: %s\n' "$4"
    sed 's/^/    /'
    printf 'probes:\n  - {name: sibling, http: {url: "%s", timeout: 1s}, interval: 250ms}\n' "$5"
    printf 'steady_state: {probes: [sibling], for: 1s}\n'
    printf 'objectives:\n  - {name: sibling-up, probe: sibling, recover_within: 30s}\nmax_duration: 3m\n'
  } >"$WORK/$1.yaml"
}
start_run() {  # start_run NAME: `faultline run $WORK/NAME.yaml` in the background (RUN_PID)
  "$BIN/faultline" run "$WORK/$1.yaml" --quiet --report-json "$WORK/$1.json" >"$WORK/$1.log" 2>&1 &
  RUN_PID=$!
}
# Ends the run (Ctrl-C unless WANT_RC is not 3) and checks its exit code; R = its report.
end_run() {  # end_run NAME WANT_RC
  [ "$2" != 3 ] || kill -INT "$RUN_PID"
  set +e
  wait "$RUN_PID"
  local rc=$?
  set -e
  R="$WORK/$1.json"
  [ $rc -eq "$2" ] || { cat "$WORK/$1.log" >&2; fail "$1: exit $rc, want $2"; }
  [ -f "$R" ] || fail "$1: no report"
}
# Evidence KEY of fault NAME (default f) on its one agent in report $R.
fev() { jq -r --arg f "${2:-f}" '.faults[] | select(.name == $f) | .agents[0].evidence.'"$1"' // 0' "$R"; }
sibling_never_failed() {
  local n
  n=$(jq '[.probes[] | select(.name == "sibling") | .samples[] | select(.ok | not)] | length' "$R")
  [ "$(jq '[.probes[] | select(.name == "sibling") | .samples[]] | length' "$R")" -gt 0 ] ||
    fail "$1: the sibling probe has no sample"
  [ "$n" = 0 ] || fail "$1: the sibling's probe failed $n time(s)"
}
names_container() {  # names_container NAME HOST: the report's one workload is that container
  jq -r '.faults[0].agents[].workload' "$R" | grep -qx "container $1 (docker [0-9a-f]*) on $2" ||
    fail "the report does not name $1 on $2: $(jq -c '[.faults[].agents[].workload]' "$R")"
}

# Baseline: everything answers, nothing is faulted.
for c in fl-orders-1 fl-orders-2; do
  resolves_in "$c" $EASTC || fail "$c does not resolve $EASTC before any fault"
  await 10 http_ok - "http://$(jq -r --arg c "$c" '.containers[] | select(.name == $c) | .address' \
    <("$BIN/faultline" sandbox status --output json)):8080/orders/42" || fail "$c's orders API before any fault"
done
http_ok fl-kv-east-1 $KV_HOST_URL || fail "fl-kv-east-1 does not reach the host's kv before any fault"
expect_nothing_left "before any fault"
pass "baseline: 4 containers answer from inside, nothing faulted"

# --- 1. DNS nodata inside fl-orders-1.
write_exp dns "{role: app}" fl-orders-1 60s http://10.77.0.102:8080/orders/42 <<EOF
dns: {domains: ["$EASTC"], mode: nodata}
EOF
start_run dns
await 30 nodata_in fl-orders-1 $EASTC || { cat "$WORK/dns.log"; fail "dns: no empty answer inside fl-orders-1"; }
await 10 http_not_ok - http://10.77.0.101:8080/orders/42 || fail "dns: fl-orders-1's orders API still succeeds"
resolves_in fl-orders-2 $EASTC || fail "dns: the sibling fl-orders-2 is affected"
[ "$(ip netns exec fl-app dig +short +time=1 +tries=1 @10.77.0.2 $EASTC A)" = 10.77.0.111 ] ||
  fail "dns: the host fl-app is affected"
http_ok - http://10.77.0.102:8080/orders/42 || fail "dns: the sibling's orders API fails"
http_ok - http://10.77.0.10:8080/orders/42 || fail "dns: the host's orders API fails"
has_fault_table fl-c-orders-1 || fail "dns: no fault table inside fl-orders-1"
no_fault_table fl-c-orders-2 && no_fault_table fl-app || fail "dns: a fault table outside fl-orders-1"
end_run dns 3
names_container fl-orders-1 fl-app
[ "$(fev queries_faulted)" -gt 0 ] || fail "dns: evidence $(jq -c '.faults[0].agents' "$R")"
sibling_never_failed dns
resolves_in fl-orders-1 $EASTC || fail "dns: fl-orders-1 does not resolve after the revert"
await 10 http_ok - http://10.77.0.101:8080/orders/42 || fail "dns: fl-orders-1's API after the revert"
expect_nothing_left "dns"
pass "dns nodata inside fl-orders-1 only ($(fev queries_faulted) queries faulted); reverted, nothing left"

# --- 2. Network partition from fl-kv-east-1 to the host's kv service.
write_exp partition "{role: db, region: us-east-1}" fl-kv-east-1 60s http://10.77.0.112:8000/healthz <<EOF
network: {partition: {}, match: {cidrs: ["10.77.0.20/32"]}}
EOF
start_run partition
await 30 http_not_ok fl-kv-east-1 $KV_HOST_URL || { cat "$WORK/partition.log"; fail "partition: fl-kv-east-1 still reaches the host"; }
http_ok fl-kv-east-2 $KV_HOST_URL || fail "partition: the sibling fl-kv-east-2 is cut from the host"
http_ok - $KV_HOST_URL || fail "partition: the host's kv service is cut from the root namespace"
http_ok - http://10.77.0.111:8000/healthz || fail "partition: fl-kv-east-1 is cut from peers not partitioned"
no_fault_table fl-db-east && no_fault_table fl-c-kv-east-2 || fail "partition: a table outside fl-kv-east-1"
end_run partition 3
names_container fl-kv-east-1 fl-db-east
sibling_never_failed partition
http_ok fl-kv-east-1 $KV_HOST_URL || fail "partition: fl-kv-east-1 does not reach the host after the revert"
expect_nothing_left "partition"
pass "network partition inside fl-kv-east-1 only ($(jq -c '.faults[0].agents[0].evidence' "$R")); reverted"

# --- 3. Network latency 400ms on the same path: the connect from inside takes at least that.
write_exp latency "{role: db, region: us-east-1}" fl-kv-east-1 60s http://10.77.0.112:8000/healthz <<EOF
network: {latency: {delay: 400ms}, match: {cidrs: ["10.77.0.20/32"], protocol: tcp}}
EOF
connect_s() { inside "$1" curl -s -o /dev/null -w '%{time_connect}' --max-time 5 $KV_HOST_URL || echo 0; }
delayed() { jq -n -e --argjson t "$(connect_s fl-kv-east-1)" '$t >= 0.4' >/dev/null; }
start_run latency
await 30 delayed || { cat "$WORK/latency.log"; fail "latency: fl-kv-east-1's connect to the host is not delayed"; }
has_fault_table fl-c-kv-east-1 || tc -n fl-c-kv-east-1 qdisc show | grep -q netem ||
  fail "latency: no fault state inside fl-kv-east-1"
no_fault_table fl-c-kv-east-2 && ! tc -n fl-c-kv-east-2 qdisc show | grep -q netem ||
  fail "latency: fault state in the sibling"
no_fault_table fl-db-east || fail "latency: a table on the host"
end_run latency 3
sibling_never_failed latency
[ "$(fev packets_matched)" -gt 0 ] || fail "latency: evidence $(jq -c '.faults[0].agents' "$R")"
expect_nothing_left "latency"
pass "network latency 400ms inside fl-kv-east-1 only ($(jq -c '.faults[0].agents[0].evidence' "$R")); reverted"

# --- 4. Dependency: the proxy inside fl-orders-1 answers 503 for fl-kv-east-1.
write_exp dependency "{role: app}" fl-orders-1 60s http://10.77.0.102:8080/orders/42 <<EOF
dependency:
  match: {cidrs: ["10.77.0.111/32"], remote_ports: [8000]}
  http: {abort: {status: 503, body: "by faultline", percent: 100%}}
EOF
start_run dependency
await 30 http_is 503 fl-orders-1 http://10.77.0.111:8000/healthz ||
  { cat "$WORK/dependency.log"; fail "dependency: fl-orders-1's requests to kv-east-1 are not aborted"; }
[ "$(listeners_in fl-orders-1)" != "8080 " ] || fail "dependency: no proxy listener inside fl-orders-1"
[ "$(listeners_in fl-orders-2)" = "8080 " ] || fail "dependency: a listener in the sibling: $(listeners_in fl-orders-2)"
http_ok fl-orders-2 http://10.77.0.111:8000/healthz || fail "dependency: the sibling's requests are affected"
http_ok - http://10.77.0.111:8000/healthz || fail "dependency: the root namespace's requests are affected"
ip netns exec fl-app curl -sf -o /dev/null --max-time 1 http://10.77.0.111:8000/healthz ||
  fail "dependency: the host fl-app's requests are affected"
end_run dependency 3
sibling_never_failed dependency
[ "$(fev connections_redirected)" -gt 0 ] || fail "dependency: evidence $(jq -c '.faults[0].agents' "$R")"
http_ok fl-orders-1 http://10.77.0.111:8000/healthz || fail "dependency: fl-orders-1 after the revert"
expect_nothing_left "dependency"
pass "dependency proxy inside fl-orders-1 only ($(fev connections_redirected) connections); reverted, no listener left"

# --- 5. Process pause, then kill, of faultline-sample-kv in fl-kv-east-1 only.
host_kv=$(cat "$SANDBOX_RUN/pids/kv-east-service.pid")
kv1=$(cpid fl-kv-east-1) kv2=$(cpid fl-kv-east-2)
for p in "$host_kv" "$kv1" "$kv2"; do
  [ "$(basename "$(readlink "/proc/$p/exe")")" = faultline-sample-kv ] || fail "pid $p is not a kv service"
done
pstate() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
stopped() { [ "$(pstate "$1")" = T ]; }
write_exp pause "{role: db, region: us-east-1}" fl-kv-east-1 60s http://10.77.0.112:8000/healthz <<EOF
process: {action: pause, name: faultline-sample-kv}
EOF
start_run pause
await 30 stopped "$kv1" || { cat "$WORK/pause.log"; fail "pause: fl-kv-east-1's kv ($kv1) not stopped"; }
http_not_ok fl-kv-east-1 http://127.0.0.1:8000/healthz || fail "pause: the paused kv answers inside its container"
[ "$(pstate "$kv2")" != T ] && [ "$(pstate "$host_kv")" != T ] || fail "pause: the sibling's or host's kv is stopped"
http_ok fl-kv-east-2 http://127.0.0.1:8000/healthz || fail "pause: the sibling's kv does not answer"
pass "process pause of fl-kv-east-1's kv only (pid $kv1; sibling $kv2 and host $host_kv ran on)"
# Restarted during the pause, in its namespace that outlives it: its new process is paused too.
podman_on fl-db-east restart -t 0 fl-kv-east-1 >/dev/null || fail "pause: cannot restart fl-kv-east-1"
kv1_new=$(cpid fl-kv-east-1)
[ -n "$kv1_new" ] && [ "$kv1_new" != "$kv1" ] || fail "pause: fl-kv-east-1 has no new process after its restart"
await 20 stopped "$kv1_new" || fail "pause: the restarted fl-kv-east-1's new kv ($kv1_new) was not paused"
[ "$(pstate "$kv2")" != T ] && [ "$(pstate "$host_kv")" != T ] || fail "pause: the sibling's or host's kv is stopped"
end_run pause 3
sibling_never_failed pause
[ "$(fev workload_restarts)" = 1 ] || fail "pause: evidence $(jq -c '.faults[0].agents' "$R")"
[ "$(pstate "$kv1_new")" != T ] || fail "pause: fl-kv-east-1's kv still stopped after the revert"
await 5 http_ok fl-kv-east-1 http://127.0.0.1:8000/healthz || fail "pause: fl-kv-east-1 after the revert"
expect_nothing_left "pause"
kv1=$kv1_new
pass "pause followed fl-kv-east-1's restart (new kv $kv1 paused, workload_restarts 1); continued after the revert"

write_exp kill "{role: db, region: us-east-1}" fl-kv-east-1 60s http://10.77.0.112:8000/healthz <<EOF
process: {action: kill, name: faultline-sample-kv}
EOF
start_run kill
await 30 test ! -e "/proc/$kv1" || { cat "$WORK/kill.log"; fail "kill: fl-kv-east-1's kv ($kv1) survived"; }
kill -0 "$kv2" && kill -0 "$host_kv" || fail "kill: the sibling's or the host's kv was killed"
end_run kill 3
sibling_never_failed kill
[ "$(fev processes_signalled)" = 1 ] || fail "kill: evidence $(jq -c '.faults[0].agents' "$R")"
podman_on fl-db-east start fl-kv-east-1 >/dev/null || fail "kill: cannot start fl-kv-east-1 again"
await 20 http_ok fl-kv-east-1 http://127.0.0.1:8000/healthz || fail "kill: fl-kv-east-1 after its start"
expect_nothing_left "kill"
pass "process kill of fl-kv-east-1's kv only (sibling and host survived); the container runs again"

# --- 6. kill -9 of fl-app's agent mid DNS drop in fl-orders-1: the journal reverts inside.
write_exp crash "{role: app}" fl-orders-1 60s http://10.77.0.102:8080/orders/42 <<EOF
dns: {domains: ["$EASTC"], mode: drop}
EOF
no_answer_in() { [ -z "$(rcode_in "$1" "$2")" ]; }
"$BIN/faultline" run "$WORK/crash.yaml" --lease-ttl 30s --quiet --report-json "$WORK/crash.json" \
  >"$WORK/crash.log" 2>&1 &
RUN_PID=$!
await 30 no_answer_in fl-orders-1 $EASTC || { cat "$WORK/crash.log"; fail "crash: the drop never acted inside fl-orders-1"; }
resolves_in fl-orders-2 $EASTC || fail "crash: the sibling is affected"
kill9_agent fl-app
has_fault_table fl-c-orders-1 || fail "crash: the table vanished with the agent: nothing to recover"
[ -n "$(ls -A "$SANDBOX_RUN/state/fl-app/journal")" ] || fail "crash: nothing in the journal"
restart_agent fl-app "$WORK/agent.ready" "$WORK/agent-restart.log"
no_fault_table fl-c-orders-1 || fail "crash: the restarted agent left the table inside fl-orders-1: $(fault_tables fl-c-orders-1)"
resolves_in fl-orders-1 $EASTC || fail "crash: fl-orders-1 does not resolve after the journal revert"
grep -q "reason=journal" "$WORK/agent-restart.log" || fail "crash: no journal revert logged: $(cat "$WORK/agent-restart.log")"
[ -z "$(find "$SANDBOX_RUN/state/fl-app/journal" -mindepth 1 -maxdepth 1 ! -name '*corrupt*')" ] ||
  fail "crash: journal records left: $(ls "$SANDBOX_RUN/state/fl-app/journal")"
end_run crash 4
expect_nothing_left "crash"
pass "kill -9 of the agent mid-fault: the restarted agent reverted inside fl-orders-1 from its journal (now empty)"

# --- 7. Containers in Podman-managed namespaces (--network none: only lo) on fl-db-west: one
# restarted during its DNS fault, one removed during it. The fault's interceptor answers the
# faulted name inside (NXDOMAIN); without the fault nothing there answers.
echo "nameserver 127.0.0.1" >"$WORK/lo-resolv.conf"  # Podman refuses --dns with --network none
for c in fl-x-restart fl-x-gone; do
  podman_on fl-db-west run -d --runtime runc --name "$c" --label faultline.test=1 --network none \
    -v "$WORK/lo-resolv.conf:/etc/resolv.conf:ro" --rootfs "$CT/rootfs" /usr/local/bin/faultline-sample-kv --listen 127.0.0.1:8000 --region x \
    >/dev/null || fail "cannot start $c"
done
lo_rcode() { inside "$1" dig +time=1 +tries=1 @127.0.0.1 x.fl.test A 2>/dev/null | awk '/status:/ {print $6}' | tr -d , || true; }
lo_nxdomain() { [ "$(lo_rcode "$1")" = NXDOMAIN ]; }
netns_ino() { stat -L -c %i "/proc/$(cpid "$1")/ns/net"; }
[ -z "$(lo_rcode fl-x-restart)" ] || fail "something answers DNS inside fl-x-restart before the fault"
{
  printf 'apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: restart-and-removal}\ntargets:\n'
  for c in restart gone; do
    printf '  %s: {selector: {role: db, region: us-west-2}, workloads: {runtime: docker, names: [fl-x-%s]}, mode: all}\n' $c $c
  done
  printf 'faults:\n'
  for c in restart gone; do
    printf '  - {name: %s, target: %s, duration: 40s, dns: {domains: [x.fl.test], mode: nxdomain}}\n' $c $c
  done
  printf 'probes:\n  - {name: sibling, http: {url: "http://10.77.0.121:8000/healthz", timeout: 1s}, interval: 250ms}\n'
  printf 'steady_state: {probes: [sibling], for: 1s}\n'
  printf 'objectives:\n  - {name: sibling-up, probe: sibling, recover_within: 30s}\nmax_duration: 3m\n'
} >"$WORK/restart.yaml"
start_run restart
for c in fl-x-restart fl-x-gone; do
  await 30 lo_nxdomain $c || { cat "$WORK/restart.log"; fail "restart: no fault inside $c"; }
done
old_ino=$(netns_ino fl-x-restart)
gone_ns=$(podman_on fl-db-west inspect -f '{{.NetworkSettings.SandboxKey}}' fl-x-gone)
gone_ino=$(netns_ino fl-x-gone)
podman_on fl-db-west rm -f -t 0 fl-x-gone >/dev/null || fail "cannot remove fl-x-gone"
podman_on fl-db-west restart -t 0 fl-x-restart >/dev/null || fail "cannot restart fl-x-restart"
[ "$(netns_ino fl-x-restart)" != "$old_ino" ] || fail "restart: Podman kept the namespace (test premise)"
await 20 lo_nxdomain fl-x-restart || fail "restart: the new instance of fl-x-restart is not faulted"
end_run restart 0
[ "$(fev workload_restarts restart)" = 1 ] || fail "restart: evidence $(jq -c '.faults[] | select(.name == "restart") | .agents' "$R")"
[ "$(fev workload_exited gone)" = 1 ] || fail "removal: evidence $(jq -c '.faults[] | select(.name == "gone") | .agents' "$R")"
[ "$(fev workload_exited restart)" = 0 ] || fail "restart: reported exited"
[ "$(jq -r .verdict "$R")" = PASS ] || fail "restart: verdict $(jq -r .verdict "$R")"
sibling_never_failed restart
[ -z "$(lo_rcode fl-x-restart)" ] || fail "restart: the fault is left inside the new instance"
[ -z "$(ip netns exec fl-db-west nft list ruleset 2>/dev/null | grep faultline_)" ] || fail "restart: table on fl-db-west"
[ -z "$(inside fl-x-restart nft list ruleset)" ] || fail "restart: rules left inside fl-x-restart"
[ -z "$gone_ns" ] || [ ! -e "$gone_ns" ] || fail "removal: the removed container's namespace $gone_ns is still there"
held=$( (find /proc/[0-9]*/ns/net /proc/[0-9]*/task/[0-9]*/ns/net -maxdepth 0 -printf '%l\n'
  find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -printf '%l\n') 2>/dev/null | grep -c "net:\[$gone_ino\]" || true)
[ "$held" = 0 ] || fail "removal: $held task(s) still in the removed container's namespace"
podman_on fl-db-west rm -f -t 0 fl-x-restart >/dev/null
expect_nothing_left "restart and removal"
pass "restart followed into the new namespace (workload_restarts 1), removal reported (workload_exited 1), run PASS, nothing left"
