#!/usr/bin/env bash
# DNS pass-through benchmark: three paths side by side in one run, in scratch namespaces dz-app
# (the client host) and dz-dns (its resolver), joined by a veth (10.96.0.1 <-> 10.96.0.2):
#   (a) dnsperf in dz-app -> upstream dnsmasq 10.96.0.2:53 (authoritative for bench.test, from memory)
#   (b) the same dnsperf command, with a real DNS fault applied in dz-app through the agent's
#       DnsBackend (bench/dns_interceptor_serve: the nft redirect + interceptor, SERVFAIL on
#       another name): dnsperf -> nft redirect -> interceptor -> the resolver dnsperf asked.
#       The interceptor's configured upstream is a dead port, so every answer proves the query
#       went to its original destination.
#   (c) dnsperf in dz-app -> dnsmasq forwarder in dz-app (127.0.0.1:15355, --cache-size=0) -> (a)
# Each round measures a, b, c in turn: throughput = dnsperf unthrottled (-q 200 -c 4) for
# DURATION s; latency = dnsperf throttled to RATE q/s with -v for LAT_SECONDS s, median of the
# per-query latencies. Prints per-round figures, then medians over ROUNDS rounds of queries/s,
# of the ratio to (a) (per round) and of the added median latency. Needs root, dnsperf, dnsmasq.
#   Usage: bench/dns_bench.sh [--smoke] [build-dir]
set -euo pipefail
ROUNDS=5 DURATION=8 RATE=2000 LAT_SECONDS=4
if [ "${1:-}" = --smoke ]; then ROUNDS=1 DURATION=2 LAT_SECONDS=1; shift; fi
BUILD="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
SERVE="$BUILD/bin/dns_interceptor_serve"
[ -x "$SERVE" ] || SERVE="$BUILD/bench/dns_interceptor_serve"
for tool in dnsperf dnsmasq ip nft; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$SERVE" ] || { echo "build dns_interceptor_serve first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, nftables)" >&2; exit 2; }
# shellcheck source=bench/dns_bench_lib.sh
. "$(dirname "$0")/dns_bench_lib.sh"
APP=dz-app DNS=dz-dns NET=10.96.0 UP=10.96.0.2 ICPT=15354 FWD=15355 DEAD=15399
WORK=$(mktemp -d /tmp/dz-dns-bench.XXXXXX)
PIDS=()
trap bench_dns_cleanup EXIT
trap "exit 143" TERM INT  # so a timeout (CTest) still runs cleanup
bench_dns_namespaces
inapp() { ip netns exec $APP "$@"; }

bench_dns_resolver
# Started with ip netns exec directly (it execs), not through inapp: $! must be dnsmasq itself.
ip netns exec $APP dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=$FWD \
  --listen-address=127.0.0.1 --bind-interfaces --pid-file= --user=root --server=$UP#53 \
  --cache-size=0 2>"$WORK/fwd.log" &
PIDS+=($!)
answers() { [ "$(inapp dig +short +time=1 +tries=1 -p "$2" @"$1" host1.bench.test)" = 10.1.0.1 ]; }
for _ in $(seq 1 100); do answers $UP 53 && answers 127.0.0.1 $FWD && break; sleep 0.05; done
answers $UP 53 && answers 127.0.0.1 $FWD || { echo "resolvers did not start" >&2; exit 1; }

throughput() {  # server port -> queries/s
  inapp dnsperf -s "$1" -p "$2" -d "$WORK/queries" -l "$DURATION" -q 200 -c 4 2>&1 |
    awk '/Queries per second/ {print $4}'
}
median_us() {  # server port -> median latency in microseconds (throttled run)
  inapp dnsperf -s "$1" -p "$2" -d "$WORK/queries" -l "$LAT_SECONDS" -Q "$RATE" -v 2>/dev/null |
    awk '$1 == ">" && $2 == "NOERROR" {print $NF * 1e6}' | sort -n |
    awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_fault() {
  # Not through inapp: $! must be the program itself (ip netns exec execs it), not a subshell.
  ip netns exec $APP "$SERVE" $ICPT $UP:$DEAD faulted.bench.test >"$WORK/serve.out" \
    2>"$WORK/serve.err" &
  SERVE_PID=$!
  for _ in $(seq 1 100); do grep -q ready "$WORK/serve.out" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$WORK/serve.out" || { cat "$WORK/serve.err" >&2; echo "fault did not apply" >&2; exit 1; }
  for _ in $(seq 1 20); do answers $UP 53 && break; done
  answers $UP 53 || { echo "(b): no answer through the interceptor" >&2; exit 1; }
  inapp dig +time=1 +tries=1 @$UP faulted.bench.test | grep -q 'status: SERVFAIL' ||
    { echo "(b): the fault is not active" >&2; exit 1; }
}
stop_fault() {
  kill "$SERVE_PID"
  wait "$SERVE_PID" || { cat "$WORK/serve.out" "$WORK/serve.err" >&2; echo "fault did not revert" >&2; exit 1; }
  inapp nft list tables | grep -q faultline_ && { echo "fault table left behind" >&2; exit 1; }
  EVIDENCE=$(grep '^fault:' "$WORK/serve.out")
}

echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')"
echo "per round: ${DURATION}s unthrottled (-q 200 -c 4), ${LAT_SECONDS}s at ${RATE} q/s for latency; $ROUNDS round(s)"
printf '%-6s %-4s %12s %8s %10s %10s\n' round path "queries/s" ratio median_us added_us
declare -A QPS LAT
for r in $(seq 1 "$ROUNDS"); do
  for path in a b c; do
    case $path in
      a) server=$UP port=53 ;;
      b) server=$UP port=53; start_fault ;;
      c) server=127.0.0.1 port=$FWD ;;
    esac
    q=$(throughput $server $port)
    l=$(median_us $server $port)
    [ "$path" = b ] && stop_fault
    [ -n "$q" ] && [ "$l" != nan ] || { echo "round $r path ($path): no result" >&2; exit 1; }
    QPS[$r$path]=$q LAT[$r$path]=$l
  done
  for path in a b c; do
    ratio=$(awk -v x="${QPS[$r$path]}" -v y="${QPS[${r}a]}" 'BEGIN {printf "%.3f", x / y}')
    added=$(awk -v x="${LAT[$r$path]}" -v y="${LAT[${r}a]}" 'BEGIN {printf "%.0f", x - y}')
    printf '%-6s %-4s %12.0f %8s %10.0f %10s\n' "$r" "($path)" "${QPS[$r$path]}" "$ratio" \
      "${LAT[$r$path]}" "$added"
    echo "$ratio" >>"$WORK/ratio.$path"
    echo "$added" >>"$WORK/added.$path"
    echo "${QPS[$r$path]}" >>"$WORK/qps.$path"
    echo "${LAT[$r$path]}" >>"$WORK/lat.$path"
  done
  echo "       (b) $EVIDENCE"
done
echo "medians over $ROUNDS round(s):"
printf '%-44s %12s %14s %10s %10s\n' path "queries/s" "ratio_to_(a)" median_us added_us
for path in a b c; do
  case $path in
    a) name="(a) upstream dnsmasq directly" ;;
    b) name="(b) nft redirect + Faultline interceptor" ;;
    c) name="(c) dnsmasq forwarder, cache off" ;;
  esac
  printf '%-44s %12.0f %14s %10.0f %10s\n' "$name" "$(median <"$WORK/qps.$path")" \
    "$(median <"$WORK/ratio.$path")" "$(median <"$WORK/lat.$path")" "$(median <"$WORK/added.$path")"
done
