#!/usr/bin/env bash
# DNS pass-through benchmark, one run, three paths side by side, all on loopback:
#   (a) dnsperf -> upstream dnsmasq (authoritative for bench.test, answers from memory)
#   (b) dnsperf -> Faultline's DnsInterceptor (a SERVFAIL rule active on another name) -> (a)
#   (c) dnsperf -> dnsmasq forwarder, cache off (--cache-size=0) -> (a)
# Throughput: dnsperf unthrottled (-q outstanding) for DURATION seconds. Latency: a second,
# throttled run (-Q RATE, well below saturation) with -v, median of the per-query latencies.
# Prints a table with ratios to (a).   Usage: bench/dns_bench.sh [--smoke] [build-dir]
set -euo pipefail
DURATION=10; RATE=2000; LAT_SECONDS=5
if [ "${1:-}" = --smoke ]; then DURATION=2; LAT_SECONDS=1; shift; fi
BUILD="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
SERVE="$BUILD/bin/dns_interceptor_serve"
[ -x "$SERVE" ] || SERVE="$BUILD/bench/dns_interceptor_serve"
for tool in dnsperf dnsmasq; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
[ -x "$SERVE" ] || { echo "build dns_interceptor_serve first" >&2; exit 2; }
WORK=$(mktemp -d /tmp/dnschaos-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# Ports: pick from a high range unlikely to be in use.
UP=25353 ICPT=25354 FWD=25355
for i in $(seq 1 50); do echo "host$i.bench.test A"; done > "$WORK/queries"
hosts=(); for i in $(seq 1 50); do hosts+=(--host-record="host$i.bench.test,10.1.0.$i"); done
dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=$UP --listen-address=127.0.0.1 \
  --bind-interfaces --pid-file="$WORK/up.pid" "${hosts[@]}" --cache-size=1000 2>"$WORK/up.log" &
PIDS+=($!)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=$FWD --listen-address=127.0.0.1 \
  --bind-interfaces --pid-file="$WORK/fwd.pid" --server=127.0.0.1#$UP --cache-size=0 \
  2>"$WORK/fwd.log" &
PIDS+=($!)
"$SERVE" $ICPT 127.0.0.1:$UP faulted.bench.test >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
  grep -q ready "$WORK/serve.out" 2>/dev/null && dig +short +time=1 +tries=1 -p $UP @127.0.0.1 \
    host1.bench.test >/dev/null 2>&1 && break
  sleep 0.05
done
throughput() {  # port -> queries/s
  dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries" -l "$DURATION" -q 200 -c 4 2>&1 |
    awk '/Queries per second/ {print $4}'
}
median_us() {  # port -> median latency in microseconds (throttled run)
  dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries" -l "$LAT_SECONDS" -Q "$RATE" -v 2>/dev/null |
    awk '$1 == ">" && $2 == "NOERROR" {print $NF * 1e6}' | sort -n |
    awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
declare -A QPS LAT
for path in a b c; do
  case $path in a) port=$UP ;; b) port=$ICPT ;; c) port=$FWD ;; esac
  QPS[$path]=$(throughput $port)
  LAT[$path]=$(median_us $port)
  [ -n "${QPS[$path]}" ] && [ "${LAT[$path]}" != nan ] || { echo "path ($path): no result" >&2; exit 1; }
done
echo "machine: $(nproc) cores, $(uname -r); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}'); ${DURATION}s unthrottled, ${LAT_SECONDS}s at ${RATE} q/s for latency"
printf '%-44s %12s %10s %14s %14s\n' path "queries/s" "ratio" "median_us" "added_us"
for path in a b c; do
  case $path in
    a) name="(a) upstream dnsmasq directly" ;;
    b) name="(b) Faultline interceptor (fault on other)" ;;
    c) name="(c) dnsmasq forwarder, cache off" ;;
  esac
  ratio=$(awk -v x="${QPS[$path]}" -v y="${QPS[a]}" 'BEGIN {printf "%.2f", x / y}')
  added=$(awk -v x="${LAT[$path]}" -v y="${LAT[a]}" 'BEGIN {printf "%.0f", x - y}')
  printf '%-44s %12.0f %10s %14.0f %14s\n' "$name" "${QPS[$path]}" "$ratio" "${LAT[$path]}" "$added"
done
kill "${PIDS[2]}"; wait "${PIDS[2]}" 2>/dev/null || true
echo "interceptor: $(tail -n 1 "$WORK/serve.out")"
