#!/usr/bin/env bash
# Installs what is missing, builds only the programs it runs (no test binaries), brings up the
# sandbox, runs the flagship experiment (experiments/dynamodb-dns-failover.yaml), prints the report,
# tears the sandbox down and exits with the run's exit code.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_demo

BIN="$BUILD_DIR/bin"
# One sandbox per machine: wait for a test run or another demo that is using it.
mkdir -p /run/lock
exec 9>/run/lock/faultline-sandbox.lock
flock 9
cleanup() { "$BIN/faultline" sandbox down >/dev/null 2>&1 || true; }
trap cleanup EXIT

log "bringing up the sandbox (automated failover on)"
"$BIN/faultline" sandbox up --failover auto

log "running experiments/dynamodb-dns-failover.yaml"
set +e
"$BIN/faultline" run "$FAULTLINE_ROOT/experiments/dynamodb-dns-failover.yaml" \
  --report-json "$BUILD_DIR/dynamodb-dns-failover.report.json" \
  --report-html "$BUILD_DIR/dynamodb-dns-failover.report.html"
rc=$?
set -e
report="$BUILD_DIR/dynamodb-dns-failover.report.json"
log "JSON report: $report; HTML report (open in a browser): ${report%.json}.html"
# Ground truth: the orders service logs the instant it failed over (CLOCK_MONOTONIC, shared by
# every namespace), so the measured time to recover can be checked against it.
truth=$(grep -h '^FAILOVER ' /run/faultline/sandbox/logs/orders.log 2>/dev/null | head -n 1 || true)
if [ -n "$truth" ] && [ -f "$report" ]; then
  ns=$(sed -E 's/.*monotonic_ns=([0-9]+).*/\1/' <<<"$truth")
  jq -r --argjson f "$ns" '"ground truth: the orders service logged its failover " +
    ((($f - .timeline.monotonic_origin_ns) / 1e9 - .timeline.t_inject_s) * 1000 | round | tostring) +
    " ms after the fault was in effect; measured time to recover: " +
    ((.objectives[] | select(.after == "inject") | .time_to_recover_s // 0) * 1000 | round | tostring) +
    " ms, truth in [" + ((.objectives[] | select(.after == "inject") | .time_to_recover_bracket_s // [0, 0]) |
      map(. * 1000 | round | tostring) | join(", ")) + "] ms"' "$report" >&2 || true
fi
log "tearing the sandbox down"
exit $rc
