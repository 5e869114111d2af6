#!/usr/bin/env bash
# The DNS interceptor's own throughput, two builds side by side (e.g. before/after a change to its
# event loop): queries/s through the nft redirect + interceptor (bench/dns_interceptor_serve, the
# agent's real DnsBackend) for four paths — UDP and TCP, each pass-through (relayed to the resolver
# the client asked) and fault answer (SERVFAIL built by the interceptor). Scratch namespaces
# dl-app (client, interceptor) and dl-dns (dnsmasq resolver), joined by a veth (10.97.0.1 <->
# 10.97.0.2). Each round runs every build in turn (dnsperf unthrottled, -q 200 -c 4, DURATION s
# per path); prints per-round figures, then the median over ROUNDS rounds. Needs root, dnsperf,
# dnsmasq. Figures, never assertions.
#   Usage: bench/dns_loop_bench.sh [--rounds N] [--seconds S] BUILD_DIR [BUILD_DIR...]
set -euo pipefail
ROUNDS=5 DURATION=4
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) DURATION=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--rounds N] [--seconds S] BUILD_DIR..." >&2; exit 2; }
BUILDS=("$@")
for b in "${BUILDS[@]}"; do
  [ -x "$b/bin/dns_interceptor_serve" ] || { echo "no $b/bin/dns_interceptor_serve" >&2; exit 2; }
done
for tool in dnsperf dnsmasq ip nft dig; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, nftables)" >&2; exit 2; }
# shellcheck source=bench/dns_bench_lib.sh
. "$(dirname "$0")/dns_bench_lib.sh"
APP=dl-app DNS=dl-dns NET=10.97.0 UP=10.97.0.2 ICPT=15364 DEAD=15399
WORK=$(mktemp -d /tmp/dl-dns-bench.XXXXXX)
PIDS=()
trap bench_dns_cleanup EXIT
trap "exit 143" TERM INT
bench_dns_namespaces
inapp() { ip netns exec $APP "$@"; }
bench_dns_resolver
cp "$WORK/queries" "$WORK/pass"
echo "faulted.bench.test A" >"$WORK/fault"
answers() { [ "$(inapp dig +short +time=1 +tries=1 @$UP host1.bench.test)" = 10.1.0.1 ]; }
for _ in $(seq 1 100); do answers && break; sleep 0.05; done
answers || { echo "resolver did not start" >&2; exit 1; }

start_fault() {  # build dir
  ip netns exec $APP "$1/bin/dns_interceptor_serve" $ICPT $UP:$DEAD faulted.bench.test \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVE_PID=$!
  for _ in $(seq 1 100); do grep -q ready "$WORK/serve.out" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$WORK/serve.out" || { cat "$WORK/serve.err" >&2; echo "fault did not apply" >&2; exit 1; }
  for _ in $(seq 1 20); do answers && break; done
  inapp dig +time=1 +tries=1 @$UP faulted.bench.test | grep -q 'status: SERVFAIL' ||
    { echo "the fault is not active" >&2; exit 1; }
}
stop_fault() {
  kill "$SERVE_PID"
  wait "$SERVE_PID" || { cat "$WORK/serve.err" >&2; echo "fault did not revert" >&2; exit 1; }
}
throughput() {  # mode queries-file -> queries/s
  inapp dnsperf -m "$1" -s $UP -p 53 -d "$2" -l "$DURATION" -q 200 -c 4 2>&1 |
    awk '/Queries per second/ {print $4}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

PATHS=("udp pass" "udp fault" "tcp pass" "tcp fault")
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "per path: ${DURATION}s dnsperf -q 200 -c 4; $ROUNDS round(s); builds: ${BUILDS[*]}"
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!BUILDS[@]}"; do
    start_fault "${BUILDS[$i]}"
    line="round $r build $i:"
    for p in "${PATHS[@]}"; do
      read -r mode kind <<<"$p"
      q=$(throughput "$mode" "$WORK/$kind")
      [ -n "$q" ] || { echo "no result for $p" >&2; exit 1; }
      echo "$q" >>"$WORK/qps.$i.$mode.$kind"
      line+=$(printf ' %s=%.0f' "$mode-$kind" "$q")
    done
    stop_fault
    echo "$line"
  done
done
echo "median queries/s over $ROUNDS round(s):"
printf '%-10s' path
for i in "${!BUILDS[@]}"; do printf ' %14s' "build $i"; done
echo
for p in "${PATHS[@]}"; do
  read -r mode kind <<<"$p"
  printf '%-10s' "$mode-$kind"
  for i in "${!BUILDS[@]}"; do printf ' %14.0f' "$(median <"$WORK/qps.$i.$mode.$kind")"; done
  echo
done
