#!/usr/bin/env bash
# A stop always wins (issue 13), on one real agent in scratch namespace wg-a (no sandbox), whose
# resolver never answers (scratch.sh's blackholed_resolver_host):
#   - real faults are active: a network blackhole and a DNS drop of *.wedge.test (nft tables);
#   - (a) a process fault whose pidfile is a FIFO, and one on /dev/ptmx, end at once as errors (they
#     used to block the agent forever in the read);
#   - (b) a network fault naming hosts under wedge.test stays stuck resolving them (the DNS drop
#     fault swallows the agent's own lookups); while it is stuck, a halt (RevertAll) reverts every
#     other fault (no faultline_ table left) and the stuck apply ends as an error (ABORTED); its
#     journal record goes once its lookup gives up, and it leaves nothing behind;
#   - control: without a halt the same stuck apply ends by itself as DEADLINE_EXCEEDED naming the
#     host, so (b) was really stuck on resolution;
#   - SIGTERM while an apply is stuck: the agent reverts everything and exits.
# Takes the sandbox lock through lib.sh (network tests never overlap) but needs no sandbox.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
DRIVER="$BIN/halt_driver"
[ -x "$DRIVER" ] || fail "build halt_driver first"
NS=wg-a
STATE="$WORK/state"

scratch_down() { ip netns del $NS 2>/dev/null || true; rm -rf /etc/netns/$NS; }
trap 'rc=$?; jobs -p | xargs -r kill -9 2>/dev/null || true; wait 2>/dev/null || true; scratch_down; rm -rf "$WORK"; exit $rc' EXIT
blackholed_resolver_host $NS
scratch_agent $NS "$STATE" "$WORK/agent.log"

drv() { ip netns exec $NS "$DRIVER" "$@"; }
apply() { drv apply "$AGENT_ADDR" wedge "$@"; }
journaled() { [ -e "$STATE/journal/$1.pb" ]; }
journal_empty() { [ -z "$(ls -A "$STATE/journal")" ]; }
running() { kill -0 "$1" 2>/dev/null; }
stopped() { ! running "$1"; }
NET='{"network":{"blackhole":{},"match":{"cidrs":["10.99.78.0/24"]}}}'
DNS='{"dns":{"domains":["wedge.test"],"mode":"DROP","match":"SUFFIX"}}'
STUCK='{"network":{"blackhole":{},"match":{"hosts":["db.wedge.test","db2.wedge.test"]}}}'

apply wedge_net "$NET" >/dev/null || fail "network blackhole not applied"
apply wedge_dns "$DNS" >/dev/null || fail "DNS drop not applied"
[ "$(fault_tables $NS | wc -l)" = 2 ] || fail "expected two fault tables, got: $(fault_tables $NS)"
pass "two real faults active: $(fault_tables $NS | tr '\n' ' ')"

# (a) Pidfiles that cannot be read without blocking: an error at once, and the agent still serves.
mkfifo "$WORK/app.pid"
for pidfile in "$WORK/app.pid" /dev/ptmx; do
  set +e
  out=$(apply "wedge_pf$RANDOM" "{\"process\":{\"action\":\"KILL\",\"pidfile\":\"$pidfile\"}}")
  rc=$?
  set -e
  [ $rc -eq 3 ] && grep -q '^FAILED_PRECONDITION' <<<"$out" && grep -q "$pidfile" <<<"$out" ||
    fail "pidfile $pidfile: expected FAILED_PRECONDITION naming it, got rc $rc: $out"
  pass "pidfile $pidfile refused at once: $out"
done

# Control: with the DNS drop active the stuck apply ends by itself, as DEADLINE_EXCEEDED naming a
# host (and applies nothing).
set +e; out=$(apply wedge_ctl "$STUCK"); rc=$?; set -e
[ $rc -eq 3 ] && grep -q '^DEADLINE_EXCEEDED' <<<"$out" && grep -q 'db.wedge.test' <<<"$out" ||
  fail "control: expected DEADLINE_EXCEEDED naming db.wedge.test, got rc $rc: $out"
[ "$(fault_tables $NS | wc -l)" = 2 ] || fail "control: the failed apply changed the tables"
pass "control: the resolution is black-holed: $out"

# (b) Halt while an apply is stuck resolving.
apply wedge_stuck "$STUCK" >"$WORK/stuck.out" 2>&1 &
stuck_pid=$!
# Its journal record is written before the backend runs: from then on it is pending.
await 10 journaled wedge_stuck || fail "the stuck apply never reached the agent"
running $stuck_pid || fail "the stuck apply ended before the halt: $(cat "$WORK/stuck.out")"
drv halt "$AGENT_ADDR" >"$WORK/halt.out" || fail "halt failed: $(cat "$WORK/halt.out")"
grep -q '^OK: reverted 3 ' "$WORK/halt.out" ||
  fail "halt should report 3 faults (2 active, 1 cancelled): $(cat "$WORK/halt.out")"
no_fault_table $NS || fail "fault tables left after the halt: $(fault_tables $NS)"
pass "halt while an apply was stuck: $(cat "$WORK/halt.out"), no faultline_ table left"
await 10 stopped $stuck_pid || fail "the stuck apply did not end after the halt"
set +e; wait $stuck_pid; rc=$?; set -e
[ $rc -eq 3 ] && grep -q '^ABORTED' "$WORK/stuck.out" ||
  fail "the stuck apply should end as ABORTED, got rc $rc: $(cat "$WORK/stuck.out")"
pass "the stuck apply ended as an error: $(cat "$WORK/stuck.out")"
await 20 journal_empty || fail "journal not emptied: $(ls "$STATE/journal")"
no_fault_table $NS || fail "the cancelled apply left a table: $(fault_tables $NS)"
set +e; out=$(apply wedge_stuck "$STUCK"); rc=$?; set -e
grep -q '^FAILED_PRECONDITION' <<<"$out" || fail "a cancelled fault id was applied again: $out"
pass "journal empty once the cancelled apply's lookup gave up; the id is never applied again"

# SIGTERM while an apply is stuck: everything is reverted and the process exits.
apply wedge_dns2 "$DNS" >/dev/null || fail "DNS drop not applied (2)"
apply wedge_stuck2 "$STUCK" >"$WORK/stuck2.out" 2>&1 &
stuck_pid=$!
await 10 journaled wedge_stuck2 || fail "the second stuck apply never reached the agent"
has_fault_table $NS || fail "no table before SIGTERM"
kill -TERM "$AGENT_PID"
await 15 stopped "$AGENT_PID" || fail "the agent did not exit on SIGTERM while an apply was stuck"
set +e; wait "$AGENT_PID"; agent_rc=$?; set -e
no_fault_table $NS || fail "SIGTERM left fault tables: $(fault_tables $NS)"
await 10 stopped $stuck_pid || fail "the stuck apply's client never got an answer"
grep -qE '^(ABORTED|UNAVAILABLE)' "$WORK/stuck2.out" ||
  fail "the apply stuck at SIGTERM should end as an error: $(cat "$WORK/stuck2.out")"
grep -q "shutdown" "$WORK/agent.log" || fail "the agent log does not mention the shutdown"
pass "SIGTERM with a stuck apply: agent exited (rc $agent_rc), no table left, apply: $(cat "$WORK/stuck2.out")"
