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

# Runs `faultline run EXPERIMENT [ARGS...]` as a user would, with its JSON report in
# $WORK/report.json: sets rc (its exit code) and R (the report), prints its stderr and stdout
# (kept in $WORK/err.txt and $WORK/out.txt), and fails when no report was written.
run_experiment() {
  set +e
  "$BIN/faultline" run "$1" --report-json "$WORK/report.json" "${@:2}" >"$WORK/out.txt" 2>"$WORK/err.txt"
  rc=$?
  set -e
  cat "$WORK/err.txt" "$WORK/out.txt"
  R="$WORK/report.json"
  [ -f "$R" ] || fail "no JSON report"
}

# Evidence counter KEY of the first fault on its first agent in report $R (0 when absent).
ev() { jq -r ".faults[0].agents[0].evidence.$1 // 0" "$R"; }

# Fails unless the DNS fault in report $R faulted at least one query and left no table in fl-app.
expect_dns_fault_bit_and_reverted() {
  [ "$(ev queries_faulted)" -gt 0 ] ||
    fail "the fault faulted no query: $(jq -c '.faults[0].agents[0].evidence' "$R")"
  no_fault_table fl-app || fail "fault table left behind: $(fault_tables fl-app)"
}


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

# A caching resolver (Debian's unbound) on fl-app's loopback: everything forwarded to fl-dns, no
# DNSSEC (the sandbox's zone is unsigned), RFC 6761's default block of .test lifted. Extra
# `server:` lines may be given as arguments ("log-replies: yes"). Waits until it resolves $EAST.
start_app_unbound() {
  local extra="" line
  for line in "$@"; do extra+="  $line"$'\n'; done
  chmod 755 "$WORK"  # unbound reads its configuration after dropping to its own user
  cat >"$WORK/unbound.conf" <<EOF
server:
  verbosity: 1
  interface: 127.0.0.1
  port: 53
  do-ip6: no
  num-threads: 1
  username: "unbound"
  chroot: ""
  directory: "$WORK"
  pidfile: ""
  use-syslog: no
  logfile: ""
${extra}  module-config: "iterator"
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-addr: 10.77.0.2
EOF
  ip netns exec fl-app unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
  await 10 bash -c "ip netns exec fl-app dig +short +time=1 +tries=1 @127.0.0.1 $EAST | grep -qx 10.77.0.20" ||
    { cat "$WORK/unbound.log" >&2; fail "unbound in fl-app does not resolve $EAST"; }
}

# kill -9 of the sandbox agent of HOST; returns once it is gone. Its command line is kept in
# KILLED_AGENT_ARGV for restart_agent.
kill9_agent() {  # kill9_agent HOST
  local pid
  pid=$(cat "$SANDBOX_RUN/pids/agent-$1.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = faultline-agent ] ||
    fail "cannot find the agent of $1"
  mapfile -d '' KILLED_AGENT_ARGV <"/proc/$pid/cmdline"
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# Starts the agent that kill9_agent killed again in HOST: the same command line, but the ready
# file READY and the log LOG. Fails the test unless it serves within 20 s.
restart_agent() {  # restart_agent HOST READY LOG
  local args=() skip=0 a
  for a in "${KILLED_AGENT_ARGV[@]}"; do
    if [ $skip -eq 1 ]; then skip=0; continue; fi
    if [ "$a" = --ready-file ]; then skip=1; continue; fi
    args+=("$a")
  done
  ip netns exec "$1" setsid "${args[@]}" --ready-file "$2" >"$3" 2>&1 &
  await 20 test -s "$2" || { cat "$3" >&2; fail "the restarted agent of $1 never became ready"; }
}
