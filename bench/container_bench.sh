#!/usr/bin/env bash
# Container vs host: ApplyFault and RevertFault latency of the same fault on a real agent's own
# host and in a real Podman container it finds by label (discovery through Podman's Docker Engine
# API socket included), and many containers faulted at once (issue 14's benchmark).
#
# One scratch "host", network namespace fl-cb-host: the agent (mTLS on 127.0.0.1, `faultline
# certs init` certificates, --docker-socket = this run's private `podman system service`), a
# bridge cbbr0 10.99.90.1/24 and a dnsmasq on 10.99.90.1:53 answering *.cb.test. Containers run
# from a root filesystem built from this machine's `sleep` and `dig` (tests/integration/
# containers_lib.sh: build_rootfs, private Podman state, --runtime runc, empty default_ulimits),
# each in a namespace fl-cb-nI of its own whose eth0 is a port of cbbr0 (10.99.90.10+I).
#   1. paired: bench/container_bench_driver paired — TRIALS trials, interleaved, of (a) a DNS
#      fault (nxdomain fault.cb.test) and (b) a network latency fault (10 ms egress to
#      10.99.90.0/24) on the host and in container fl-cb-paired (label cbench.role=paired).
#   2. fleet: CONTAINERS containers labelled cbench.role=fleet plus an unlabelled sibling;
#      bench/container_bench_driver fleet — FLEET_TRIALS trials of one ListWorkloads by label and
#      every ApplyFault at once (what `faultline run` does for `mode: all`), then every revert.
#      In the first and the last trial, from inside a sample of the containers (podman exec dig):
#      fault.cb.test is NXDOMAIN while applied and resolves again after the revert; the sibling
#      and the host resolve it throughout; no faultline_* nft table is left in any container.
# Prints every sample and the medians / p95 / ratios; exit 1 on any error or failed check.
# Takes the sandbox lock (fl-cb-* names); everything is removed on exit, Ctrl-C included.
#   Usage: bench/container_bench.sh [--smoke] [build-dir]   (root; podman, runc, dnsmasq, dig)
#   TRIALS (20), CONTAINERS (50), FLEET_TRIALS (10) from the environment; --smoke: 2, 5, 2.
#   AGENT_LOG=FILE keeps the agent's log.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/integration/sandbox_lock.sh"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRIALS=${TRIALS:-20} CONTAINERS=${CONTAINERS:-50} FLEET_TRIALS=${FLEET_TRIALS:-10}
if [ "${1:-}" = --smoke ]; then TRIALS=2 CONTAINERS=5 FLEET_TRIALS=2; shift; fi
BUILD="${1:-$ROOT/build}"
BIN="$(cd "$BUILD/bin" && pwd)"
# Defines fail/pass/await; containers_init/build_rootfs/podman_service/containers_cleanup.
source "$ROOT/tests/integration/scratch.sh"
source "$ROOT/tests/integration/containers_lib.sh"
for b in faultline faultline-agent container_bench_driver; do
  [ -x "$BIN/$b" ] || fail "build $b first"
done
[ "$(id -u)" = 0 ] || fail "needs root (namespaces, nftables, podman)"
for p in podman runc dnsmasq dig; do
  command -v $p >/dev/null || fail "$p is not installed (scripts/lib.sh installs it)"
done
[ "$CONTAINERS" -ge 1 ] && [ "$CONTAINERS" -le 200 ] || fail "CONTAINERS must be 1..200"

H=fl-cb-host DOMAIN=fault.cb.test HOST_IP=10.99.90.1
WORK="$(mktemp -d /tmp/fl-cbench.XXXXXX)"
AGENT_PID="" DNSMASQ_PID="" DRIVER_PID=""
remove_namespaces() {
  local ns
  for ns in $(ip netns list | awk '$1 ~ /^fl-cb-/ {print $1}'); do ip netns del "$ns" || true; done
  rm -rf "/etc/netns/$H"
}
no_podman_below() { ! pgrep -f -- "$1/podman" >/dev/null; }
cleanup() {
  local rc=$? m
  set +e
  trap - INT TERM
  for p in $DRIVER_PID $AGENT_PID $DNSMASQ_PID; do kill "$p" 2>/dev/null; done
  [ -z "${AGENT_LOG:-}" ] || cp "$WORK/agent.log" "$AGENT_LOG"
  containers_cleanup 2>/dev/null
  # Each container's conmon runs `podman container cleanup` once the container is gone, which
  # mounts Podman's storage again: wait for them (at most 30 s), then unmount what is left.
  await 30 no_podman_below "$WORK"
  while read -r m; do umount -l "$m"; done < <(
    awk -v d="$WORK/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
  remove_namespaces
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
remove_namespaces  # a crashed earlier run's

# --- the host namespace, its resolver, the containers' namespaces --------------------------------
ip netns add $H
ip -n $H link set lo up
ip -n $H link add cbbr0 type bridge
ip -n $H addr add $HOST_IP/24 dev cbbr0
ip -n $H link set cbbr0 up
mkdir -p /etc/netns/$H
echo "nameserver $HOST_IP" >/etc/netns/$H/resolv.conf
ip netns exec $H dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file \
  --listen-address=$HOST_IP --bind-interfaces --port=53 --no-resolv --no-hosts \
  --address=/cb.test/$HOST_IP --user=nobody --log-facility=- >"$WORK/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!

container_netns() {  # container_netns INDEX: namespace fl-cb-nINDEX on the bridge, 10.99.90.(10+INDEX)
  local ns=fl-cb-n$1
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n $H link add "cbv$1" type veth peer name eth0 netns "$ns"
  ip -n $H link set "cbv$1" master cbbr0
  ip -n $H link set "cbv$1" up
  ip -n "$ns" addr add "10.99.90.$((10 + $1))/24" dev eth0
  ip -n "$ns" link set eth0 up
}

containers_init "$WORK/podman"
ROOTFS_DIR="$WORK/rootfs"
build_rootfs "$ROOTFS_DIR" "$(command -v sleep)" "$(command -v dig)"
SOCK="$WORK/podman.sock"
podman_service "$SOCK"
run_container() {  # run_container NAME INDEX [--label K=V]...
  local name=$1 index=$2; shift 2
  container_netns "$index"
  "${PODMAN[@]}" run -d --runtime runc --name "$name" --label faultline.test=1 "$@" \
    --network "ns:/run/netns/fl-cb-n$index" --dns $HOST_IP --rootfs "$ROOTFS_DIR" /usr/bin/sleep 3600 >/dev/null
}
# Index 0: the paired container; 1: the unlabelled sibling; 2..: the fleet.
run_container fl-cb-paired 0 --label cbench.role=paired
run_container fl-cb-sibling 1
started=$(date +%s%N)
for i in $(seq 1 "$CONTAINERS"); do run_container "fl-cb-$i" $((i + 1)) --label cbench.role=fleet; done
echo "started $CONTAINERS fleet containers in $(( ($(date +%s%N) - started) / 1000000 )) ms"

# --- the agent (mTLS) ------------------------------------------------------------------------------
"$BIN/faultline" certs init "$WORK/certs" >/dev/null
ip netns exec $H "$BIN/faultline-agent" --listen 127.0.0.1:0 --name cb-host \
  --state-dir "$WORK/state" --tls-ca "$WORK/certs/ca.pem" --tls-cert "$WORK/certs/agent.pem" \
  --tls-key "$WORK/certs/agent-key.pem" --docker-socket "$SOCK" --cri-socket none \
  --ready-file "$WORK/agent.ready" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
await 20 test -s "$WORK/agent.ready" || { cat "$WORK/agent.log" >&2; fail "the agent did not start"; }
ADDR=$(cat "$WORK/agent.ready")

# --- checks from inside ---------------------------------------------------------------------------
rcode_in() {  # rcode_in CONTAINER: the status of a query for $DOMAIN from inside it
  "${PODMAN[@]}" exec "$1" /usr/bin/dig +time=2 +tries=1 @$HOST_IP $DOMAIN A 2>&1 |
    awk '/status:/ {print $6}' | tr -d ,
}
rcode_host() { ip netns exec $H dig +time=2 +tries=1 @$HOST_IP $DOMAIN A | awk '/status:/ {print $6}' | tr -d ,; }
expect_rcode() {  # expect_rcode WANT WHAT CONTAINER|host
  local got
  if [ "$3" = host ]; then got=$(rcode_host); else got=$(rcode_in "$3"); fi
  [ "$got" = "$1" ] || fail "$2: $3 got '${got:-no answer}' for $DOMAIN, want $1"
}
no_tables_left() {
  local i left
  for i in $(seq 0 $((CONTAINERS + 1))) host; do
    if [ $i = host ]; then left=$(fault_tables $H); else left=$(fault_tables "fl-cb-n$i"); fi
    [ -z "$left" ] || fail "faultline tables left in namespace ${i}: $left"
  done
}
# A sample of the fleet: all in the smoke, else the first, quartiles and the last.
if [ "$CONTAINERS" -le 5 ]; then SAMPLE=$(seq 1 "$CONTAINERS")
else SAMPLE="1 $((CONTAINERS / 4)) $((CONTAINERS / 2)) $((CONTAINERS * 3 / 4)) $CONTAINERS"; fi
for c in fl-cb-paired fl-cb-sibling $(for i in $SAMPLE; do echo fl-cb-$i; done) host; do
  expect_rcode NOERROR "before any fault (control)" $c
done
pass "before any fault: $DOMAIN resolves in the sampled containers, the sibling and the host"

echo "== paired: host vs container (label cbench.role=paired), $TRIALS trials; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec $H "$BIN/container_bench_driver" paired "$ADDR" "$WORK/certs" \
  --label cbench.role=paired --container fl-cb-paired --trials "$TRIALS" --dns-domain $DOMAIN \
  --cidr 10.99.90.0/24 --delay-us 10000
no_tables_left
pass "paired: every apply ACTIVE where asked, every revert REVERTED, no faultline table left"

echo "== fleet: $CONTAINERS containers (label cbench.role=fleet) at once, $FLEET_TRIALS trials; load $(cut -d' ' -f1-3 /proc/loadavg)"
coproc FLEET (exec ip netns exec $H "$BIN/container_bench_driver" fleet "$ADDR" "$WORK/certs" \
  --label cbench.role=fleet --expect "$CONTAINERS" --trials "$FLEET_TRIALS" --dns-domain $DOMAIN \
  --handshake 2>&1)
DRIVER_PID=$FLEET_PID
IN=${FLEET[0]} OUT=${FLEET[1]}
verified=0
while IFS= read -r line <&"$IN"; do
  case "$line" in
    "applied "*)
      t=${line#applied }
      if [ "$t" = 0 ] || [ "$t" = $((FLEET_TRIALS - 1)) ]; then
        for i in $SAMPLE; do expect_rcode NXDOMAIN "trial $t, fault applied" fl-cb-$i; done
        expect_rcode NOERROR "trial $t, fault applied: the unlabelled sibling" fl-cb-sibling
        expect_rcode NOERROR "trial $t, fault applied: the host" host
        verified=$((verified + 1))
      fi
      echo go >&"$OUT" ;;
    "reverted "*)
      t=${line#reverted }
      if [ "$t" = 0 ] || [ "$t" = $((FLEET_TRIALS - 1)) ]; then
        for i in $SAMPLE; do expect_rcode NOERROR "trial $t, after the revert" fl-cb-$i; done
        no_tables_left
      fi
      echo go >&"$OUT" ;;
    *) echo "$line" ;;
  esac
done
wait "$DRIVER_PID" || fail "the fleet driver failed (errors above)"
DRIVER_PID=""
[ "$verified" -ge 1 ] || fail "no fleet trial was checked from inside"
pass "fleet: $CONTAINERS containers faulted at once with no error; inside containers $(echo $SAMPLE | tr ' ' ,): NXDOMAIN while applied, NOERROR after; sibling and host untouched; no table left"
