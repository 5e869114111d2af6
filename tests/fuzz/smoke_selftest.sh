#!/usr/bin/env bash
# smoke_selftest.sh FUZZ_SMOKE_SELFTEST: the negative control of the suite's fuzz smoke runs. The
# driver (smoke_main.cpp) linked with a target that aborts on inputs starting with "FL!" must find
# such an input from a corpus of "FL" alone, report it (non-zero exit), and leave the input in a
# crash-* file whose replay dies again; a corpus the target accepts must pass.
set -euo pipefail
bin=$(realpath "$1")
work=$(mktemp -d /tmp/faultline-fuzz-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$work/corpus" "$work/art"
printf 'FL' >"$work/corpus/seed"
"$bin" "$work/corpus" --runs 0 --artifacts "$work/art" >/dev/null || fail "the harmless corpus failed"
set +e
"$bin" "$work/corpus" --runs 200000 --seconds 60 --artifacts "$work/art" >"$work/log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "the planted bug was not found: $(cat "$work/log")"
grep -q FINDING "$work/log" || fail "no FINDING line: $(cat "$work/log")"
crash=$(find "$work/art" -name 'crash-*' | head -n 1)
[ -n "$crash" ] || fail "no crash file written"
[ "$(head -c 3 "$crash")" = 'FL!' ] || fail "the crash file does not hold the input: $(od -c "$crash" | head -3)"
set +e
"$bin" "$crash" >/dev/null 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "replaying $crash did not crash"
echo "PASS: planted bug found (exit $rc on replay), input kept"
