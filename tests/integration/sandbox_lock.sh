# shellcheck shell=bash
# Sourced first by every integration test (through lib.sh, or directly), before it does anything
# else: "$0" must be the test script, "$@" its arguments. Tests with scratch namespaces of their
# own take it too, so that no two integration tests ever run at once on one machine.
#
# One sandbox per machine: wait for any other user of it (another test run, a developer's demo).
# The test re-runs itself under flock(1), which holds the lock in its own process and closes it
# for the test (-o): a process the test leaves behind (even after a timeout's SIGKILL) can never
# keep the sandbox locked.
if [ -z "${FAULTLINE_SANDBOX_LOCKED:-}" ]; then
  mkdir -p /run/lock
  exec env FAULTLINE_SANDBOX_LOCKED=1 flock -o /run/lock/faultline-sandbox.lock bash "$0" "$@"
fi
