#!/usr/bin/env bash
# The kernel's dead-man switch: for every fault kind, applied through the real agent, kill -9 of
# that agent with NO restart leaves a clean host within the dead-man timeout (3 s by default):
# DNS resolves, blackhole/reject/partition/loss/latency/bandwidth let traffic through, a dependency
# redirect no longer catches connections, and a paused process runs again (its guard continues
# it). Each lapse is awaited by polling, and its length is printed (figure for bench/RESULTS.md).
# Between kinds the agent is restarted (its journal revert then removes the inert leftovers).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
KV=http://10.77.0.20:8000/kv/orders/1
EAST_KV=http://dynamodb.us-east-1.sandbox.test:8000/kv/orders/1
SINK_PORT=9099

sandbox_up --failover off
in_app() { ip netns exec fl-app "$@"; }

# Writes experiment $1 with one fault on target $2 (app|db) whose YAML mapping entry is $3.
experiment() {
  cat >"$WORK/$1.yaml" <<EOI
apiVersion: faultline/v1
kind: Experiment
metadata: {name: $1}
targets:
  app: {selector: {role: app}}
  db: {selector: {role: db, region: us-east-1}}
faults:
  - {name: f, target: $2, $3, duration: 5m}
probes:
  - name: healthz
    http: {url: "http://10.77.0.30:8000/healthz", timeout: 1s}
    interval: 1s
objectives:
  - {name: o, probe: healthz, recover_within: 10m}
max_duration: 10m
EOI
}

# The agent of host $1: its pid now (the sandbox's, or the one this test restarted).
declare -A AGENT_PID
agent_pid() {
  local p=${AGENT_PID[$1]:-}
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && { echo "$p"; return; }
  cat "$SANDBOX_RUN/pids/agent-$1.pid"
}

# Restarts host $1's agent with the command line of the one that died ($2: its argv file).
restart_agent() {
  local host=$1 ready="$WORK/agent-$1-$RANDOM.ready" args=() skip=0 a
  mapfile -d '' argv <"$2"
  for a in "${argv[@]}"; do
    if [ $skip -eq 1 ]; then skip=0; continue; fi
    if [ "$a" = --ready-file ]; then skip=1; continue; fi
    args+=("$a")
  done
  ip netns exec "$host" setsid "${args[@]}" --ready-file "$ready" >>"$WORK/agent-$host.log" 2>&1 &
  await 20 test -f "$ready" || { tail -n 20 "$WORK/agent-$host.log"; fail "$host agent not ready"; }
  AGENT_PID[$host]=$(pgrep -f -- "--ready-file $ready" | head -n 1)
}

# One kind: experiment $1 on target $2 (host $3) with fault $4; `bites` and `clean` are the
# commands named by $5 and $6.
LAPSES=()
check_kind() {
  local name=$1 target=$2 host=$3 fault=$4 bites=$5 clean=$6
  experiment "$name" "$target" "$fault"
  "$BIN/faultline" run "$WORK/$name.yaml" --lease-ttl 60s --quiet >"$WORK/$name.log" 2>&1 &
  local run=$!
  await 30 "$bites" || { cat "$WORK/$name.log"; fail "$name: the fault never bit"; }
  "$bites" || fail "$name: the fault stopped biting while the agent lives"
  local pid
  pid=$(agent_pid "$host")
  [ "$(cat /proc/"$pid"/comm)" = faultline-agent ] || fail "$name: no agent on $host"
  cp "/proc/$pid/cmdline" "$WORK/argv-$host"
  kill -9 "$pid"
  local t0
  t0=$(now_ns)
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  await 20 "$clean" || fail "$name: host not clean 20 s after kill -9 of the agent (no restart)"
  local ms=$(( ($(now_ns) - t0) / 1000000 ))
  LAPSES+=("$name=${ms}ms")
  pass "$name: bit, then lapsed ${ms} ms after kill -9 of the agent, no restart"
  kill -9 "$run" 2>/dev/null || true
  wait "$run" 2>/dev/null || true
  restart_agent "$host" "$WORK/argv-$host"
}

# DNS: the east name stops resolving (drop), and resolves again.
dns_bites() { ! east_resolves; }
check_kind dns app fl-app \
  'dns: {domains: [dynamodb.us-east-1.sandbox.test], mode: drop}' dns_bites east_resolves

# Network kinds against the east kv service.
kv_ok() { in_app curl -sf -o /dev/null -m 1 "$KV"; }
kv_fails() { ! kv_ok; }
kv_refused() { in_app curl -s -o /dev/null -m 1 "$KV"; [ $? -eq 7 ]; }
check_kind blackhole app fl-app \
  'network: {blackhole: {}, match: {protocol: tcp, cidrs: [10.77.0.20], remote_ports: [8000]}}' \
  kv_fails kv_ok
check_kind reject app fl-app \
  'network: {reject: {}, match: {protocol: tcp, cidrs: [10.77.0.20], remote_ports: [8000]}}' \
  kv_refused kv_ok
check_kind partition app fl-app 'network: {partition: {}, match: {cidrs: [10.77.0.20]}}' \
  kv_fails kv_ok
check_kind loss app fl-app 'network: {loss: {percent: 100}, match: {cidrs: [10.77.0.20]}}' \
  kv_fails kv_ok
# Latency through the NFQUEUE delay line: 1.5 s added, so a 1 s request cannot finish.
check_kind latency app fl-app 'network: {latency: {delay: 1500ms}, match: {cidrs: [10.77.0.20]}}' \
  kv_fails kv_ok
# Bandwidth: 256 KiB to a sink on fl-db-east cannot pass at 8 kbit/s (1000 bytes/s) within 3 s.
head -c 262144 /dev/zero >"$WORK/blob"
ip netns exec fl-db-east socat -u TCP-LISTEN:$SINK_PORT,fork,reuseaddr OPEN:/dev/null &
send_blob() { in_app timeout 3 socat -u "OPEN:$WORK/blob" "TCP:10.77.0.20:$SINK_PORT"; }
await 5 send_blob || fail "bandwidth: the sink on fl-db-east does not take the blob"
blob_slow() { ! send_blob; }
check_kind bandwidth app fl-app \
  "network: {bandwidth: {rate: 8kbit}, match: {protocol: tcp, cidrs: [10.77.0.20], remote_ports: [$SINK_PORT]}}" \
  blob_slow send_blob

# Dependency: reset_peer on every connection to the east endpoint's port.
east_ok() { in_app curl -sf -o /dev/null -m 1 "$EAST_KV"; }
east_fails() { ! east_ok; }
check_kind dependency app fl-app \
  'dependency: {match: {remote_ports: [8000], hosts: [dynamodb.us-east-1.sandbox.test]}, toxics: [{reset_peer: {}}]}' \
  east_fails east_ok

# Process pause (SIGSTOP) of the east kv service, selected by its pidfile: the guard continues it.
KV_PIDFILE="$SANDBOX_RUN/pids/kv-east-service.pid"
kv_stopped() { [ "$(awk '{print $3}' "/proc/$(cat "$KV_PIDFILE")/stat")" = T ]; }
kv_running() { ! kv_stopped && curl -sf -o /dev/null -m 1 http://10.77.0.20:8000/healthz; }
check_kind pause db fl-db-east "process: {action: pause, pidfile: $KV_PIDFILE}" \
  kv_stopped kv_running

echo "lapse after kill -9 (dead-man timeout 3s): ${LAPSES[*]}"
