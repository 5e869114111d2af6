#!/usr/bin/env bash
# kill -9 of `faultline run` mid-fault: nobody renews the lease, so the agent reverts on its own.
# Within lease TTL + 1 s the faultline_* table is gone from fl-app and the name resolves again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
TTL=3

sandbox_up --failover auto
"$BIN/faultline" run "$FLAGSHIP" --lease-ttl "${TTL}s" --quiet >"$WORK/run.log" 2>&1 &
run_pid=$!
await 30 has_fault_table fl-app || { cat "$WORK/run.log"; fail "the fault was never applied"; }
east_resolves && fail "fault applied but the east endpoint still resolves"
kill -9 "$run_pid"
killed_at=$(now_ns)
wait "$run_pid" 2>/dev/null || true
await $((TTL + 1)) no_fault_table fl-app ||
  fail "table still present $((TTL + 1))s after the controller died: $(fault_tables fl-app)"
gone_at=$(now_ns)
await 2 east_resolves || fail "east endpoint does not resolve after the lease expired"
echo "lease-expiry revert: table gone $(( (gone_at - killed_at) / 1000000 )) ms after kill -9 (TTL ${TTL}s)"
grep -q "lease-expired" "$SANDBOX_RUN"/logs/*agent*fl-app*.log 2>/dev/null ||
  grep -rq "lease" "$SANDBOX_RUN"/logs/ || fail "agent log does not mention the lease expiry"
pass "lease expiry reverted the fault"
