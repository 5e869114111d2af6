#!/usr/bin/env bash
# Dependency fault proxy benchmark (issue 6), one run, in a scratch namespace px-bench (loopback
# only; never the fl-* sandbox). Every path carries the same traffic to the same servers:
#   (a) bare loopback, (b) Faultline's proxy behind its real nft redirect with no toxic (applied by
#   proxy_bench_driver through ProxyBackend: the client still dials the server's own address;
#   untouched directions use splice(2), the default; (b') the same through user-space
#   read/write, PX_SPLICE=0),
#   (c) haproxy in TCP mode, (d) socat (fork per connection).
#   1. Throughput: iperf3 TCP, ROUNDS rounds of a, b, c, d interleaved; medians; ratios to (a).
#   2. Added latency per request: net_echo TCP ping-pong (64 B, one connection, sequential) RTT
#      through each path minus the bare RTT (medians, p99).
#   3. Accuracy of a 50 ms downstream latency toxic: RTT through the proxy with the toxic minus
#      (i) the bare median RTT (what the application sees, the proxy hop included) and (ii) the
#      median RTT through the same proxy without a toxic (what the toxic itself adds); median and
#      p99, compared with 50 ms.
# Usage: bench/proxy_bench.sh [--smoke] [build-dir]   (root; needs iperf3, haproxy, socat, jq)
set -euo pipefail
ROUNDS=3 IPERF_S=5 PINGS=2000 LAT_PINGS=200 GAP_MS=1
if [ "${1:-}" = --smoke ]; then ROUNDS=1 IPERF_S=1 PINGS=50 LAT_PINGS=5; shift; fi
BUILD="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
DRIVER="$BUILD/bin/proxy_bench_driver" ECHO="$BUILD/bin/net_echo"
for b in "$DRIVER" "$ECHO"; do [ -x "$b" ] || { echo "build $(basename "$b") first" >&2; exit 2; }; done
for tool in iperf3 haproxy socat jq ip; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
NS=px-bench
IPERF=15501 HAP_IPERF=15502 SOCAT_IPERF=15503 ECHO_PORT=15510 HAP_ECHO=15512 SOCAT_ECHO=15513
WORK=$(mktemp -d /tmp/px-bench.XXXXXX)
PIDS=() DRV=""
cleanup() {
  [ -n "$DRV" ] && kill "$DRV" 2>/dev/null && wait "$DRV" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del $NS 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del $NS 2>/dev/null || true
ip netns add $NS
ip -n $NS link set lo up
in_ns() { ip netns exec $NS "$@"; }
ip netns exec $NS iperf3 -s -B 127.0.0.1 -p $IPERF >"$WORK/iperf-s.out" 2>&1 & PIDS+=($!)
ip netns exec $NS "$ECHO" serve $ECHO_PORT >"$WORK/echo.out" 2>&1 & PIDS+=($!)
cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 1024
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen iperf
  bind 127.0.0.1:$HAP_IPERF
  server s 127.0.0.1:$IPERF
listen echo
  bind 127.0.0.1:$HAP_ECHO
  server s 127.0.0.1:$ECHO_PORT
CFG
ip netns exec $NS haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.out" 2>&1 & PIDS+=($!)
ip netns exec $NS socat TCP-LISTEN:$SOCAT_IPERF,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:$IPERF >/dev/null 2>&1 & PIDS+=($!)
ip netns exec $NS socat TCP-LISTEN:$SOCAT_ECHO,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:$ECHO_PORT >/dev/null 2>&1 & PIDS+=($!)
listening() { in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
for p in $IPERF $ECHO_PORT $HAP_IPERF $HAP_ECHO $SOCAT_IPERF $SOCAT_ECHO; do
  for _ in $(seq 1 200); do listening $p && break; sleep 0.05; done
  listening $p || { echo "nothing listens on $p" >&2; exit 1; }
done

fault_on() {  # [latency_us]
  ip netns exec $NS "$DRIVER" $IPERF,$ECHO_PORT 127.0.0.1/32 "$@" >"$WORK/drv.out" 2>&1 & DRV=$!
  for _ in $(seq 1 200); do grep -q ready "$WORK/drv.out" && return 0; sleep 0.05; done
  echo "driver not ready: $(cat "$WORK/drv.out")" >&2; exit 1
}
fault_off() { kill "$DRV"; wait "$DRV" || true; echo "  proxy evidence: $(tail -n 1 "$WORK/drv.out")" >&2; DRV=""; }
iperf() {  # port -> bits/s received
  in_ns iperf3 -c 127.0.0.1 -p "$1" -t $IPERF_S -J >"$WORK/iperf.json" 2>"$WORK/iperf.err" || true
  jq -r '.end.sum_received.bits_per_second // 0' "$WORK/iperf.json" 2>/dev/null || {
    echo "  iperf3 via port $1 failed: $(head -c 300 "$WORK/iperf.json" "$WORK/iperf.err")" >&2
    echo 0
  }
}
median() { sort -g | awk '{a[NR]=$1} END {print NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
stats() {  # file -> "median p99" in microseconds
  sort -n "$1" | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
    i = int(NR*0.99); if (i < NR*0.99) i++; print m, a[i]}'
}

declare -A NAMES=([a]="bare loopback" [b]="faultline, no toxic" [s]="faultline, read/write" [c]="haproxy tcp" [d]="socat")
echo "== throughput: iperf3 ${IPERF_S}s x $ROUNDS rounds (a, b, c, d interleaved)"
for _ in $(seq 1 $ROUNDS); do
  iperf $IPERF >>"$WORK/tp.a"
  fault_on; iperf $IPERF >>"$WORK/tp.b"; fault_off
  export PX_SPLICE=0; fault_on; iperf $IPERF >>"$WORK/tp.s"; fault_off; unset PX_SPLICE
  iperf $HAP_IPERF >>"$WORK/tp.c"
  iperf $SOCAT_IPERF >>"$WORK/tp.d"
done
A=$(median <"$WORK/tp.a")
for k in a b s c d; do
  m=$(median <"$WORK/tp.$k")
  name=${NAMES[$k]}
  awk -v n="$name" -v m="$m" -v a="$A" 'BEGIN {printf "  %-22s %8.2f Gbit/s  ratio %.2f\n", n, m/1e9, (a > 0 ? m/a : 0)}'
done

echo "== added latency per request: $PINGS sequential 64-byte TCP round trips"
in_ns "$ECHO" ping tcp 127.0.0.1 $ECHO_PORT $PINGS $GAP_MS >"$WORK/rtt.a"
fault_on; in_ns "$ECHO" ping tcp 127.0.0.1 $ECHO_PORT $PINGS $GAP_MS >"$WORK/rtt.b"; fault_off
in_ns "$ECHO" ping tcp 127.0.0.1 $HAP_ECHO $PINGS $GAP_MS >"$WORK/rtt.c"
in_ns "$ECHO" ping tcp 127.0.0.1 $SOCAT_ECHO $PINGS $GAP_MS >"$WORK/rtt.d"
read -r am ap < <(stats "$WORK/rtt.a")
echo "  bare loopback          RTT median ${am} us, p99 ${ap} us"
for k in b c d; do
  read -r m p < <(stats "$WORK/rtt.$k")
  name=${NAMES[$k]}
  awk -v n="$name" -v m="$m" -v p="$p" -v am="$am" -v ap="$ap" \
    'BEGIN {printf "  %-22s RTT median %s us, p99 %s us; added median %+d us, p99 %+d us\n", n, m, p, m-am, p-ap}'
done

echo "== 50 ms downstream latency toxic: $LAT_PINGS round trips"
fault_on 50000; in_ns "$ECHO" ping tcp 127.0.0.1 $ECHO_PORT $LAT_PINGS $GAP_MS >"$WORK/rtt.l"; fault_off
read -r lm lp < <(stats "$WORK/rtt.l")
read -r bm _ < <(stats "$WORK/rtt.b")
# Against the bare path: what the application sees (the proxy hop included).
awk -v m="$lm" -v p="$lp" -v am="$am" 'BEGIN {
  printf "  vs bare:            added median %.3f ms (error %+.3f ms), p99 %.3f ms (error %+.3f ms)\n",
    (m-am)/1000, (m-am)/1000-50, (p-am)/1000, (p-am)/1000-50}'
# Against the same proxy without the toxic: what the toxic itself adds.
awk -v m="$lm" -v p="$lp" -v bm="$bm" 'BEGIN {
  printf "  vs proxy, no toxic: added median %.3f ms (error %+.3f ms), p99 %.3f ms (error %+.3f ms)\n",
    (m-bm)/1000, (m-bm)/1000-50, (p-bm)/1000, (p-bm)/1000-50}'
