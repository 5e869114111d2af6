#!/usr/bin/env bash
# The console's page against the fake console (console/web/test/fake.test.mjs) in Debian's
# Chromium. Needs no root, no sandbox and no network; node_modules comes from the build's
# `npm ci` (console/web/console_web.cmake).
# Usage: browser_test.sh DIST_DIR SOURCE_DIR
set -euo pipefail
DIST="$1"
SRC="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v chromium >/dev/null || fail "chromium is not installed (scripts/lib.sh installs it)"
command -v node >/dev/null || fail "node is not installed (scripts/lib.sh installs it)"
[ -s "$DIST/console.js" ] || fail "the page is not built: $DIST/console.js (build faultline_console_assets)"
[ -d "$SRC/console/web/node_modules/playwright-core" ] ||
  fail "console/web/node_modules is missing (the build runs npm ci)"
cd "$SRC/console/web"
FAULTLINE_CONSOLE_DIST="$DIST" exec node --test test/fake.test.mjs
