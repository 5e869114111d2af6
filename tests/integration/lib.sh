#!/usr/bin/env bash
# Helpers for integration tests. Each test gets the build's bin dir as $1, brings up its own
# sandbox and tears it down on exit. Tests share the sandbox's names: CTest runs them serially.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/sandbox_lock.sh"

BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034  # for the tests that source this file
FLAGSHIP="$ROOT/experiments/dynamodb-dns-failover.yaml"
SANDBOX_RUN=/run/faultline/sandbox
WORK="$(mktemp -d /tmp/faultline-it.XXXXXX)"
source "$ROOT/tests/integration/scratch.sh"

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

# The east endpoint as fl-app resolves it (through its resolver, so through any DNS fault).
resolve_east() { ip netns exec fl-app dig +short +time=1 +tries=1 dynamodb.us-east-1.sandbox.test A; }
east_resolves() { [ "$(resolve_east)" = "10.77.0.20" ]; }

now_ns() { date +%s%N; }


# The orders service's logged failover (CLOCK_MONOTONIC, shared by every namespace), in seconds
# after the instant REPORT's fault was in effect on every target; empty when it logged none.
logged_failover_after_inject() {
  local report="$1" line ns
  line=$(grep -h '^FAILOVER ' "$SANDBOX_RUN"/logs/*orders*.log 2>/dev/null | head -n 1 || true)
  [ -n "$line" ] || return 0
  ns=$(sed -E 's/.*monotonic_ns=([0-9]+).*/\1/' <<<"$line")
  jq -n --argjson f "$ns" --argjson o "$(jq .timeline.monotonic_origin_ns "$report")" \
    --argjson t "$(jq .timeline.t_inject_s "$report")" '(($f - $o) / 1e9) - $t'
}

# Fails unless objective OBJECTIVE of REPORT has a recovery bracket that contains the orders
# service's logged failover instant; prints the figures either way.
expect_failover_in_bracket() {
  local report="$1" objective="$2" truth lo hi ttr
  truth=$(logged_failover_after_inject "$report")
  [ -n "$truth" ] || fail "the orders service logged no FAILOVER line"
  ttr=$(jq -r --arg n "$objective" '.objectives[] | select(.name==$n) | .time_to_recover_s' "$report")
  lo=$(jq -r --arg n "$objective" '.objectives[] | select(.name==$n) | .time_to_recover_bracket_s[0]' "$report")
  hi=$(jq -r --arg n "$objective" '.objectives[] | select(.name==$n) | .time_to_recover_bracket_s[1]' "$report")
  [ "$lo" != null ] && [ "$hi" != null ] || fail "objective $objective has no recovery bracket"
  echo "measured recovery ${ttr}s, bracket [${lo}s, ${hi}s] (width" \
    "$(jq -n "$hi - $lo")s); logged failover ${truth}s after inject"
  jq -n -e --argjson lo "$lo" --argjson hi "$hi" --argjson t "$truth" '$lo <= $t and $t <= $hi' \
    >/dev/null || fail "the logged failover ${truth}s lies outside the bracket [${lo}s, ${hi}s]"
}
