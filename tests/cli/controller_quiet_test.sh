#!/usr/bin/env bash
# `faultline run --controller --quiet` prints only the verdict line on stdout, as a direct run
# does; without --quiet it prints the full report (the negative control). A faultline-controller
# on 127.0.0.1 (plaintext, loopback only) without agents: the run ends in ERROR at once, since
# no agent carries role=db. No root, no sandbox.
# Usage: controller_quiet_test.sh BUILD/bin
set -euo pipefail
BIN=$1
WORK=$(mktemp -d)
CTL_PID=
cleanup() {
  if [ -n "$CTL_PID" ]; then kill "$CTL_PID" 2>/dev/null || true; wait "$CTL_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=tests/integration/scratch.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/scratch.sh"  # await, pass
fail() { echo "FAIL: $*" >&2; echo "--- controller log" >&2; cat "$WORK/controller.log" >&2 || true; exit 1; }

cat >"$WORK/exp.yaml" <<'YAML'
apiVersion: faultline/v1
kind: Experiment
metadata: {name: quiet-cli}
targets:
  db: {selector: {role: db}, mode: all}
faults:
  - name: dns
    target: db
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: 1m
probes:
  - name: ok
    command: {argv: ["true"]}
    interval: 100ms
steady_state: {probes: [ok], for: 100ms}
objectives:
  - {name: available, probe: ok, recover_within: 1m, stable_for: 100ms}
YAML

"$BIN/faultline-controller" --listen 127.0.0.1:0 --insecure --ready-file "$WORK/ready" \
  --store "sqlite://$WORK/history.db" --allow-command-probe true >"$WORK/controller.log" 2>&1 &
CTL_PID=$!
# The ready file appears once the controller listens (written atomically, with its address).
await 10 test -s "$WORK/ready" || fail "the controller never became ready"
ADDR=$(head -n1 "$WORK/ready")

run() {
  set +e
  "$BIN/faultline" run --controller "$ADDR" --insecure "$WORK/exp.yaml" "$@" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$?
  set -e
}

run --quiet
[ "$rc" -ne 0 ] || fail "a run without agents passed (exit 0)"
lines=$(wc -l <"$WORK/out")
[ "$lines" -eq 1 ] || fail "--quiet printed $lines lines on stdout, not one: $(cat "$WORK/out")"
grep -Eq '^ERROR quiet-cli \(run [^)]+\): .+' "$WORK/out" ||
  fail "--quiet did not print the verdict line: $(cat "$WORK/out")"
pass "--controller --quiet: only the verdict line ($(cat "$WORK/out"))"

# Negative control: without --quiet the same run prints the whole report, verdict included.
run
[ "$rc" -ne 0 ] || fail "a run without agents passed (exit 0)"
lines=$(wc -l <"$WORK/out")
[ "$lines" -gt 1 ] || fail "without --quiet only $lines line(s): $(cat "$WORK/out")"
grep -q '^Experiment quiet-cli ' "$WORK/out" || fail "the report does not name the experiment"
grep -q '^Verdict: ERROR ' "$WORK/out" || fail "the report does not give the verdict"
pass "--controller without --quiet: the full report ($lines lines)"
