#!/usr/bin/env bash
# Every option the docs name for a command exists: for each `faultline VERB [SUBVERB] ... --opt`
# (and `faultline-agent ... --opt`, `faultline-controller ... --opt`) in README.md, deploy/README.md
# and docs/*.md — in code blocks and in `inline code` — `faultline VERB [SUBVERB] --help` must list
# --opt, and VERB/SUBVERB must be real subcommands. Generic: a verb added later is checked as soon
# as the docs mention it.
# Usage: docs_help_test.sh BIN_DIR
set -euo pipefail
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY=/usr/bin/python3
exec "$PY" - "$BIN" "$ROOT" <<'PYEOF'
import glob, os, re, subprocess, sys

bin_dir, root = sys.argv[1], sys.argv[2]
docs = [os.path.join(root, "README.md"), os.path.join(root, "deploy", "README.md")]
docs += sorted(glob.glob(os.path.join(root, "docs", "*.md")))
docs = [d for d in docs if os.path.exists(d)]
BINARIES = ("faultline", "faultline-agent", "faultline-controller")
help_cache = {}

def help_of(path):
    """--help text of `binary sub...`, or None when the binary is not built."""
    path = tuple(path)
    if path not in help_cache:
        exe = os.path.join(bin_dir, path[0])
        if not os.access(exe, os.X_OK):
            help_cache[path] = None
        else:
            r = subprocess.run([exe, *path[1:], "--help"], capture_output=True, text=True,
                               timeout=30)
            help_cache[path] = r.stdout + r.stderr
    return help_cache[path]

def subcommands(text):
    subs, on = set(), False
    for line in text.splitlines():
        if line.startswith("Subcommands:"):
            on = True
            continue
        if on:
            m = re.match(r"^  ([a-z][a-z0-9-]*)\b", line)
            if m:
                subs.add(m.group(1))
            elif line and not line.startswith(" "):
                on = False
    return subs

def has_option(text, opt):
    return re.search(r"(^|[\s,])" + re.escape(opt) + r"([\s,=]|$)", text, re.M) is not None

# Snippets: lines of fenced code blocks and `inline code` spans, with their line numbers.
snippets = []
for doc in docs:
    in_block = False
    for n, line in enumerate(open(doc, encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            snippets.append((doc, n, line))
        else:
            for span in re.findall(r"`([^`]+)`", line):
                snippets.append((doc, n, span))

problems, checked, skipped = [], 0, set()
for doc, n, text in snippets:
    text = text.split(" #")[0]  # shell comments
    tokens = re.split(r"[\s|\[\]()]+", text.replace("\\|", " "))
    for i, tok in enumerate(tokens):
        name = os.path.basename(tok)
        if name not in BINARIES or (tok != name and "/" not in tok):
            continue
        # A command, not an argument that happens to be called faultline (`kubectl -n faultline`).
        prev = [t for t in tokens[:i] if t]
        if prev and prev[-1] not in ("&&", "||", ";", "|", "sudo", "exec", "time", "-"):
            continue
        path = [name]
        h = help_of(path)
        if h is None:
            if any(t.startswith("--") for t in tokens[i + 1:]):
                skipped.add(name)
            continue
        j = i + 1
        # Descend into subcommands while the next word is one.
        while j < len(tokens):
            subs = subcommands(help_of(path))
            if tokens[j] in subs:
                path.append(tokens[j])
                j += 1
            else:
                break
        if name == "faultline" and len(path) == 1:
            if j < len(tokens) and re.fullmatch(r"[a-z]+", tokens[j] or ""):
                problems.append(f"{os.path.relpath(doc, root)}:{n}: `faultline {tokens[j]}` is not "
                                f"a verb of faultline (its verbs: {sorted(subcommands(h))})")
            continue
        # Options up to the next command on the line (a pipe, &&, another binary).
        for tok2 in tokens[j:]:
            if tok2 in ("&&", ";", "||") or os.path.basename(tok2) in BINARIES:
                break
            m = re.fullmatch(r"(--[a-z0-9][a-z0-9-]*)(=.*)?", tok2)
            if not m:
                continue
            checked += 1
            if not has_option(help_of(path), m.group(1)):
                problems.append(f"{os.path.relpath(doc, root)}:{n}: `{' '.join(path)} "
                                f"{m.group(1)}`: not in `{' '.join(path)} --help`")

for p in problems:
    print("FAIL:", p)
if problems:
    sys.exit(1)
print(f"ok: {checked} documented option(s) found in --help across {len(docs)} file(s)")
if skipped:
    print("SKIP: not built, options unchecked:", ", ".join(sorted(skipped)))
    sys.exit(77)
PYEOF
