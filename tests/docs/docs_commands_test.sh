#!/usr/bin/env bash
# Runs every shell command the docs show, in order, against the sandbox: each line of a ```sh
# block in docs/tutorial-us-east-1.md, then README.md, is one command run from the repository
# root (one bash session per file, so `export`/`cd` carry over). A command must exit 0, or the
# code its trailing comment names with "expect exit N". A line whose comment says "not run by the
# doc test" is skipped (the suite's own entry points, production-only commands). `faultline*`
# resolve to the build under test, whatever PATH the docs set. Runs are recorded in a history of
# the test's own ($FAULTLINE_HISTORY, as the docs allow), never in the machine's.
# Usage: docs_commands_test.sh BIN_DIR [DOC...]
# All arguments go to lib.sh: it re-runs this script under the sandbox lock with them (DOC... too).
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" "$@"
shift
docs=("$@")
[ ${#docs[@]} -gt 0 ] || docs=("$ROOT/docs/tutorial-us-east-1.md" "$ROOT/README.md")

for doc in "${docs[@]}"; do
  script="$WORK/$(basename "$doc").sh"
  /usr/bin/python3 - "$doc" "$BIN" "$ROOT" "$WORK/history.db" >"$script" <<'PYEOF'
import re, shlex, sys
doc, bin_dir, root, history = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
print("cd " + shlex.quote(root))
print("export FAULTLINE_HISTORY=" + shlex.quote(history))
for name in ("faultline", "faultline-agent", "faultline-controller"):
    print(f'{name}() {{ {shlex.quote(bin_dir + "/" + name)} "$@"; }}')
in_sh, count = False, 0
for n, line in enumerate(open(doc, encoding="utf-8"), 1):
    stripped = line.strip()
    if stripped.startswith("```"):
        in_sh = (not in_sh) and stripped[3:].strip() in ("sh", "bash", "shell")
        continue
    if not in_sh or not stripped or stripped.startswith("#"):
        continue
    if "not run by the doc test" in stripped:
        print(f"echo {shlex.quote(f'skip {doc}:{n}: {stripped}')}")
        continue
    m = re.search(r"#.*expect exit (\d+)", stripped)
    want = int(m.group(1)) if m else 0
    where = f"{doc}:{n}"
    print(f"echo {shlex.quote('$ ' + stripped)}")
    print(stripped)
    print(f'rc=$?; [ $rc -eq {want} ] || {{ echo {shlex.quote("FAIL: " + where + ": ")}"exit $rc, '
          f'expected {want}: "{shlex.quote(stripped)}; exit 1; }}')
    count += 1
print(f"echo {shlex.quote(f'ok: {count} command(s) of {doc} ran as documented')}")
PYEOF
  bash "$script" 2>&1 | tee "$WORK/$(basename "$doc").log" | grep -E '^(\$ |ok: |skip |FAIL: )' || true
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$WORK/$(basename "$doc").log" >&2
    fail "a documented command in $doc did not behave as documented"
  fi
  # Each file starts from a clean slate (the next may bring up its own sandbox).
  "$BIN/faultline" sandbox down >/dev/null 2>&1 || true
done
pass "every documented command ran as documented"
