#!/usr/bin/env bash
# Helpers for integration tests. Each test gets the build's bin dir as $1, brings up its own
# sandbox and tears it down on exit. Tests share the sandbox's names: CTest runs them serially.
set -euo pipefail

# One sandbox per machine: wait for any other user of it (another test run, a developer's demo).
# The test re-runs itself under flock(1), which holds the lock in its own process and closes it
# for the test (-o): a process the test leaves behind (even after a timeout's SIGKILL) can never
# keep the sandbox locked.
if [ -z "${FAULTLINE_SANDBOX_LOCKED:-}" ]; then
  mkdir -p /run/lock
  exec env FAULTLINE_SANDBOX_LOCKED=1 flock -o /run/lock/faultline-sandbox.lock bash "$0" "$@"
fi

BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FLAGSHIP="$ROOT/experiments/dynamodb-dns-failover.yaml"
SANDBOX_RUN=/run/faultline/sandbox
WORK="$(mktemp -d /tmp/faultline-it.XXXXXX)"


fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

cleanup() {
  local rc=$?
  # Leave evidence behind for a failed test before the sandbox's logs go away.
  if [ $rc -ne 0 ] && [ -d "$SANDBOX_RUN/logs" ]; then
    for f in "$SANDBOX_RUN"/logs/*.log; do echo "--- $f (tail)"; tail -n 30 "$f"; done >&2
  fi
  jobs -p | xargs -r kill -9 2>/dev/null || true
  "$BIN/faultline" sandbox down >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

sandbox_up() { "$BIN/faultline" sandbox up "$@" >"$WORK/sandbox-up.log" 2>&1 || { cat "$WORK/sandbox-up.log" >&2; fail "sandbox up $*"; }; }

# Names of faultline_* nft tables in a sandbox host's namespace.
fault_tables() { ip netns exec "$1" nft list tables 2>/dev/null | awk '$3 ~ /^faultline_/ {print $3}'; }

# Polls (every 50 ms) until the command succeeds or the deadline (seconds) passes.
await() {
  local deadline_s=$1; shift
  local end=$(( $(date +%s%N) + deadline_s * 1000000000 ))
  until "$@"; do
    [ "$(date +%s%N)" -lt "$end" ] || return 1
    sleep 0.05
  done
}

has_fault_table() { [ -n "$(fault_tables "$1")" ]; }
no_fault_table() { [ -z "$(fault_tables "$1")" ]; }

# The east endpoint as fl-app resolves it (through its resolver, so through any DNS fault).
resolve_east() { ip netns exec fl-app dig +short +time=1 +tries=1 dynamodb.us-east-1.sandbox.test A; }
east_resolves() { [ "$(resolve_east)" = "10.77.0.20" ]; }

now_ns() { date +%s%N; }

source "$ROOT/tests/integration/scratch.sh"
