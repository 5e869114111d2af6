#!/usr/bin/env bash
# Installs what is missing, builds, brings up the sandbox, runs the flagship experiment
# (experiments/dynamodb-dns-failover.yaml), prints the report, tears the sandbox down and exits
# with the run's exit code.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup

BIN="$BUILD_DIR/bin"
cleanup() { "$BIN/faultline" sandbox down >/dev/null 2>&1 || true; }
trap cleanup EXIT

log "bringing up the sandbox (automated failover on)"
"$BIN/faultline" sandbox up --failover auto

log "running experiments/dynamodb-dns-failover.yaml"
set +e
"$BIN/faultline" run "$FAULTLINE_ROOT/experiments/dynamodb-dns-failover.yaml" \
  --report-json "$BUILD_DIR/dynamodb-dns-failover.report.json"
rc=$?
set -e
log "JSON report: $BUILD_DIR/dynamodb-dns-failover.report.json"
log "tearing the sandbox down"
exit $rc
