#!/usr/bin/env bash
# One agent alone (issue 7, idle footprint): start-up CPU, memory and idle CPU of
# `faultline-agent --dry-run`, for one or more agent binaries side by side in one run (e.g. the
# dynamically and the statically linked build), rounds interleaved, medians.
# Usage: bench/agent_footprint.sh [--smoke] [--rounds N] [--idle SECONDS] [--tls CERT_DIR]
#          LABEL=AGENT_BINARY...
# --tls serves mTLS with the agent certificates of CERT_DIR (`faultline certs init CERT_DIR`)
# instead of plaintext (--insecure); no client connects either way.
# Per start: wall time to the ready file; CPU to ready = the sum over the agent's threads of
# /proc/PID/task/*/schedstat run time (ns) when the ready file appears (threads that already
# exited are not counted: the agent starts none that end before it is ready); then after 1 s
# VmRSS, RssAnon, RssFile (/proc/PID/status) and Pss (/proc/PID/smaps_rollup); then idle CPU =
# schedstat delta over the idle window. Agents listen on 127.0.0.1 on a port the kernel picks
# (plaintext, loopback) with a state directory under /dev/shm; each is stopped (SIGTERM, then
# SIGKILL) before the next.
# Figures are printed, never asserted.
set -euo pipefail
ROUNDS=7
IDLE=10
SETTLE=1
TLS_DIR=""
if [ "${1:-}" = "--smoke" ]; then ROUNDS=1; IDLE=1; SETTLE=0.2; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --idle) IDLE="$2"; shift 2 ;;
    --tls) TLS_DIR="$2"; shift 2 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "usage: $0 [--smoke] [--rounds N] [--idle SECONDS] [--tls CERT_DIR]" \
    "LABEL=AGENT_BINARY..." >&2
  exit 2
fi
SECURITY=(--insecure)
if [ -n "$TLS_DIR" ]; then
  SECURITY=(--tls-ca "$TLS_DIR/ca.pem" --tls-cert "$TLS_DIR/agent.pem"
    --tls-key "$TLS_DIR/agent-key.pem")
fi
DIR="$(mktemp -d /dev/shm/agent-footprint.XXXXXX)"
AGENT_PID=""
cleanup() {
  if [ -n "$AGENT_PID" ]; then kill -KILL "$AGENT_PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

# Sum of run time (ns) over the threads of $1.
cpu_ns() {
  local sum=0 t v
  for t in /proc/"$1"/task/*/schedstat; do
    read -r v _ < "$t" 2>/dev/null || continue
    sum=$((sum + v))
  done
  echo "$sum"
}
kib() { awk -v k="$2:" '$1 == k {print $2}' "$1"; }
median() {
  sort -n | awk '{a[NR] = $1}
    END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# One start of agent $2 labelled $1; appends "label wall_ms cpu_ms rss anon file pss idle_pct".
measure() {
  local label="$1" bin="$2" state="$DIR/state" ready="$DIR/ready"
  rm -rf "$state" "$ready"
  mkdir -p "$state"
  local t0 t1
  t0=$(date +%s%N)
  "$bin" --dry-run "${SECURITY[@]}" --listen 127.0.0.1:0 --name footprint --state-dir "$state" \
    --ready-file "$ready" --log-level warn > "$DIR/agent.log" 2>&1 &
  AGENT_PID=$!
  local deadline=$((t0 + 30000000000))
  until [ -s "$ready" ]; do
    if ! kill -0 "$AGENT_PID" 2>/dev/null || [ "$(date +%s%N)" -gt "$deadline" ]; then
      echo "agent_footprint: $label did not become ready:" >&2
      cat "$DIR/agent.log" >&2
      exit 1
    fi
    sleep 0.005
  done
  t1=$(date +%s%N)
  local start_ns
  start_ns=$(cpu_ns "$AGENT_PID")
  sleep "$SETTLE"
  local st="/proc/$AGENT_PID/status"
  local rss anon file pss
  rss=$(kib "$st" VmRSS); anon=$(kib "$st" RssAnon); file=$(kib "$st" RssFile)
  pss=$(kib "/proc/$AGENT_PID/smaps_rollup" Pss)
  local i0 i1
  i0=$(cpu_ns "$AGENT_PID")
  sleep "$IDLE"
  i1=$(cpu_ns "$AGENT_PID")
  kill -TERM "$AGENT_PID"
  local waited=0
  while kill -0 "$AGENT_PID" 2>/dev/null && [ $waited -lt 500 ]; do
    sleep 0.01
    waited=$((waited + 1))
  done
  kill -KILL "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=""
  awk -v l="$label" -v w=$(( (t1 - t0) / 1000 )) -v c="$start_ns" -v r="$rss" -v a="$anon" \
    -v f="$file" -v p="$pss" -v d=$((i1 - i0)) -v idle="$IDLE" \
    'BEGIN {printf "%s %.1f %.1f %d %d %d %d %.4f\n", l, w / 1000, c / 1e6, r, a, f, p,
            d / (idle * 1e9) * 100}' >> "$DIR/samples"
}

MODE=plaintext
if [ -n "$TLS_DIR" ]; then MODE="mTLS ($TLS_DIR)"; fi
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$ROUNDS rounds, idle window ${IDLE} s, $MODE"
for spec in "$@"; do
  bin="${spec#*=}"
  echo "${spec%%=*}: $bin, $(stat -c %s "$bin") bytes," \
    "$(ldd "$bin" | grep -c '=>') shared libraries"
done
for ((r = 0; r < ROUNDS; r++)); do
  for spec in "$@"; do measure "${spec%%=*}" "${spec#*=}"; done
done
printf '%-10s %9s %9s %9s %9s %9s %9s %9s\n' binary ready_ms cpu_ms rss_KiB anon_KiB \
  file_KiB pss_KiB idle_cpu%
for spec in "$@"; do
  label="${spec%%=*}"
  row="$label"
  for col in 2 3 4 5 6 7 8; do
    row="$row $(awk -v l="$label" -v c="$col" '$1 == l {print $c}' "$DIR/samples" | median)"
  done
  # shellcheck disable=SC2086
  printf '%-10s %9s %9s %9s %9s %9s %9s %9s\n' $row
done
echo "(medians of $ROUNDS; after: load $(cut -d' ' -f1-3 /proc/loadavg))"
