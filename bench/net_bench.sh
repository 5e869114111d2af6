#!/usr/bin/env bash
# Network delay line benchmark (issue 5), one run, in scratch namespaces netbench-a/netbench-b
# joined by a veth (10.98.0.1 <-> 10.98.0.2), never the fl-* sandbox. The fault is applied by
# net_fault_driver through NetworkBackend directly (no agent, no gRPC) in netbench-a: latency,
# EGRESS, peer 10.98.0.2/32 — so every request a client in netbench-a sends is held, replies are not.
#   1. Fidelity: TCP echo and UDP ping-pong (bench/net_echo, 64 B, sequential) round trips on the
#      bare link and with 10 ms, 100 ms, 1 s requested; added = faulted - bare (median, p99).
#   2. Throughput: iperf3 TCP, bare vs delay line at 0 ms (delay_us=1, the minimum) and 50 ms
#      egress (reinject line in netbench-a), and 50 ms ingress (hold line in netbench-b).
#   3. Packets/s: net_echo blast (16-byte UDP, sendmmsg, unthrottled) bare vs delay line at 0 ms:
#      sent/s, and delivered/s = RX packets counted on netbench-b's veth over the run.
# The delay line threads run SCHED_FIFO priority $NET_BENCH_RT (default 10; 0 = normal scheduling).
# Usage: bench/net_bench.sh [--smoke] [build-dir]   (root; needs iperf3, jq)
set -euo pipefail
N10=200 N100=200 N1000=20 IPERF_S=5 GAP_MS=5
if [ "${1:-}" = --smoke ]; then N10=20 N100=10 N1000=2 IPERF_S=1; shift; fi
BUILD="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
DRIVER="$BUILD/bin/net_fault_driver" ECHO="$BUILD/bin/net_echo"
for b in "$DRIVER" "$ECHO"; do [ -x "$b" ] || { echo "build $(basename "$b") first" >&2; exit 2; }; done
for tool in iperf3 jq ip; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
A=netbench-a B=netbench-b IPA=10.98.0.1 IPB=10.98.0.2 PORT=25300 IPORT=25301
WORK=$(mktemp -d /tmp/netbench.XXXXXX)
PIDS=() DRV=""
cleanup() {
  [ -n "$DRV" ] && kill "$DRV" 2>/dev/null && wait "$DRV" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true
ip netns add $A; ip netns add $B
ip link add netbench-va netns $A type veth peer name netbench-vb netns $B
ip -n $A addr add $IPA/24 dev netbench-va; ip -n $B addr add $IPB/24 dev netbench-vb
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set netbench-va up; ip -n $B link set netbench-vb up
# With RT > 0 the echo endpoints run SCHED_FIFO too (bare and faulted alike): on a host shared
# with other CPU-bound work a normal task woken after a 10 ms sleep can wait milliseconds for a CPU,
# which would be measured as delay-line error.
CHRT=(); [ "${NET_BENCH_RT:-10}" -gt 0 ] && CHRT=(chrt -f 5)
ip netns exec $B "${CHRT[@]}" "$ECHO" serve $PORT >"$WORK/echo.out" 2>&1 & PIDS+=($!)
ip netns exec $B iperf3 -s -p $IPORT >"$WORK/iperf-s.out" 2>&1 & PIDS+=($!)
await_line() {  # file pattern: poll up to 10 s
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1: $(cat "$1")" >&2; return 1
}
await_line "$WORK/echo.out" ready
for _ in $(seq 1 200); do ip netns exec $A bash -c "exec 3<>/dev/tcp/$IPB/$IPORT" 2>/dev/null && break; sleep 0.05; done

RT=${NET_BENCH_RT:-10}
fault_on() {  # delay_us [ingress: applied in B on packets from A]
  if [ "${2:-}" = ingress ]; then
    ip netns exec $B "$DRIVER" "$1" $IPA/32 3100 ingress $RT >"$WORK/drv.out" 2>&1 & DRV=$!
  else
    ip netns exec $A "$DRIVER" "$1" $IPB/32 3100 egress $RT >"$WORK/drv.out" 2>&1 & DRV=$!
  fi
  await_line "$WORK/drv.out" ready
}
fault_off() {  # [label]: keeps the line's own mean added delay in $WORK/<label>.line
  kill "$DRV"; wait "$DRV" || true; echo "  driver: $(tail -n 1 "$WORK/drv.out")" >&2; DRV=""
  [ -n "${1:-}" ] && grep -o 'added_delay_mean_us=[0-9]*' "$WORK/drv.out" | cut -d= -f2 >"$WORK/$1.line"
  return 0
}
stats() {  # file -> "median p99 n" in microseconds
  sort -n "$1" | awk '{a[NR]=$1} END {if (NR == 0) {print "nan nan 0"; exit}
    m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; i = int(NR*0.99); if (i < NR*0.99) i++;
    print m, a[i], NR}'
}
pings() {  # label count -> files $WORK/<label>.{tcp,udp}
  for proto in tcp udp; do
    ip netns exec $A "${CHRT[@]}" "$ECHO" ping $proto $IPB $PORT "$2" $GAP_MS >"$WORK/$1.$proto"
  done
}
tput() { ip netns exec $A iperf3 -c $IPB -p $IPORT -t $IPERF_S -J | jq '.end.sum_received.bits_per_second'; }
rx_packets() { ip -n $B -s -j link show netbench-vb | jq '.[0].stats64.rx.packets'; }
pps() {  # -> "delivered_pps sent_pps": net_echo blast to a closed port; delivered = veth RX in B
  local r0 r1 sent
  r0=$(rx_packets)
  sent=$(ip netns exec $A "$ECHO" blast $IPB 9 $IPERF_S)
  sleep 0.2  # let packets still in flight (or held) arrive; counted in the delivered rate
  r1=$(rx_packets)
  awk -v r=$((r1 - r0)) -v s=$IPERF_S -v sent=$sent 'BEGIN {printf "%.0f %.0f\n", r / s, sent}'
}

echo "== fidelity (samples: $N10 at bare/10 ms, $N100 at 100 ms, $N1000 at 1 s, gap ${GAP_MS} ms)" >&2
pings bare $N10
declare -A REQ=([d10]=10000 [d100]=100000 [d1000]=1000000)
declare -A CNT=([d10]=$N10 [d100]=$N100 [d1000]=$N1000)
for d in d10 d100 d1000; do fault_on ${REQ[$d]}; pings $d ${CNT[$d]}; fault_off $d; done
echo "== throughput (iperf3 TCP, ${IPERF_S}s) and packets/s (net_echo blast, 16 B UDP)" >&2
T_BARE=$(tput); P_BARE=$(pps)
fault_on 1; T_0=$(tput); P_0=$(pps); fault_off
# Ingress: B's veth counts packets before the line, so delivered/s is what the line released
# (packets_delayed over the blast), and anything it let pass (fail-open) is reported with it.
fault_on 1 ingress; P_0I=$(pps); fault_off
ev() { grep -o "$1=[0-9]*" "$WORK/drv.out" | cut -d= -f2; }
P_0I="$(( $(ev packets_delayed) / IPERF_S )) ${P_0I#* }"
I_FAILOPEN=$(ev packets_fail_open)
fault_on 50000; T_50=$(tput); fault_off
fault_on 50000 ingress; T_50I=$(tput); fault_off

echo "delay line threads: SCHED_FIFO priority $RT (0 = normal scheduling)"
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); $(iperf3 --version | head -n 1 | cut -d' ' -f1-2)"
printf '%-9s %-5s %5s %11s %11s %13s %13s %10s %10s %12s\n' requested proto n median_us p99_us \
  added_med_us added_p99_us err_med_us err_p99_us line_mean_us
for proto in tcp udp; do
  read -r bm bp bn < <(stats "$WORK/bare.$proto")
  printf '%-9s %-5s %5s %11.0f %11.0f %13s %13s %10s %10s\n' bare $proto $bn $bm $bp - - - -
  for d in d10 d100 d1000; do
    read -r m p n < <(stats "$WORK/$d.$proto")
    awk -v r=${REQ[$d]} -v m=$m -v p=$p -v bm=$bm -v bp=$bp -v n=$n -v d=${d#d}ms -v pr=$proto \
      -v l="$(cat "$WORK/$d.line" 2>/dev/null)" 'BEGIN {
      printf "%-9s %-5s %5s %11.0f %11.0f %13.0f %13.0f %10.0f %10.0f %12s\n", d, pr, n, m, p, m-bm, p-bp, m-bm-r, p-bp-r, l}'
  done
done
awk -v b="$T_BARE" -v z="$T_0" -v f="$T_50" -v i="$T_50I" 'BEGIN {
  printf "TCP throughput: bare %.2f Gbit/s | delay line 0 ms %.3f Gbit/s (ratio %.3f) | 50 ms egress %.4f Gbit/s (ratio %.4f) | 50 ms ingress %.4f Gbit/s (ratio %.4f)\n",
    b/1e9, z/1e9, z/b, f/1e9, f/b, i/1e9, i/b}'
read -r pb_rx pb_tx <<<"$P_BARE"; read -r p0_rx p0_tx <<<"$P_0"; read -r pi_rx pi_tx <<<"$P_0I"
awk -v brx="$pb_rx" -v btx="$pb_tx" -v rx="$p0_rx" -v tx="$p0_tx" -v irx="$pi_rx" -v itx="$pi_tx" 'BEGIN {
  printf "UDP 16 B packets/s delivered (sent): bare %.0f (%.0f) | delay line 0 ms egress (reinject) %.0f (%.0f), ratio %.3f | ingress (hold) %.0f (%.0f), ratio %.3f\n",
    brx, btx, rx, tx, rx/brx, irx, itx, irx/brx}'
echo "ingress packets passed around the line (fail-open): $I_FAILOPEN"
