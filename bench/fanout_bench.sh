#!/usr/bin/env bash
# Controller fan-out benchmark (issue 7): N = 10, 100, 1000 real `faultline-agent --dry-run`
# processes attached to the controller on loopback; apply-to-last-ack, halt-to-last-agent and the
# agents' idle RSS/CPU. Usage: bench/fanout_bench.sh [--smoke] [BUILD_DIR]
set -euo pipefail
SMOKE=()
if [ "${1:-}" = "--smoke" ]; then SMOKE=(--smoke); shift; fi
BUILD="$(cd "${1:-build}" && pwd)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$BUILD/bin/fanout_bench" --agent-bin "$BUILD/bin/faultline-agent" "${SMOKE[@]}" \
  --json "${FANOUT_JSON:-/tmp/cd-fanout.json}"
