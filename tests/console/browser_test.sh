#!/usr/bin/env bash
# The console's page against the fake console (console/web/test/fake.test.mjs) in Debian's
# Chromium. Needs no root, no sandbox and no network; node_modules comes from the build's
# `npm ci` (console/web/console_web.cmake).
# The screenshot check also runs on the report renderer's own timeline of a stored real run
# (`faultline report --format html` of tests/unit/controller/report/testdata/flagship-fail.report.json)
# when BIN_DIR has the CLI.
# Usage: browser_test.sh DIST_DIR SOURCE_DIR [BIN_DIR]
set -euo pipefail
DIST="$1"
SRC="$2"
BIN="${3:-}"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v chromium >/dev/null || fail "chromium is not installed (scripts/lib.sh installs it)"
command -v node >/dev/null || fail "node is not installed (scripts/lib.sh installs it)"
[ -s "$DIST/console.js" ] || fail "the page is not built: $DIST/console.js (build faultline_console_assets)"
[ -d "$SRC/console/web/node_modules/playwright-core" ] ||
  fail "console/web/node_modules is missing (the build runs npm ci)"
if [ -n "$BIN" ] && [ -x "$BIN/faultline" ]; then
  WORK=$(mktemp -d /tmp/faultline-console-test.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  # The stored run failed over by hand, in effect: the objective recovers with the first successes
  # after the failures (the revert), so its recover marker and bracket are drawn.
  jq '.timeline.t_inject_s as $ti | [.probes[0].samples[] | select(.t_s > $ti)] as $s
      | ([$s[] | select(.ok | not)][0].t_s) as $fail
      | ([$s[] | select(.ok and .t_s > $fail)][0].t_s - $ti) as $rec
      | .objectives[0].time_to_recover_s = $rec
      | .objectives[0].time_to_recover_bracket_s = [$rec - 0.25, $rec]' \
    "$SRC/tests/unit/controller/report/testdata/flagship-fail.report.json" >"$WORK/recovered.json"
  "$BIN/faultline" report "$WORK/recovered.json" --format html --out "$WORK/report.html"
  export FAULTLINE_REPORT_HTML="$WORK/report.html"
fi
cd "$SRC/console/web"
FAULTLINE_CONSOLE_DIST="$DIST" node --test test/fake.test.mjs
