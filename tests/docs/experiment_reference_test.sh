#!/usr/bin/env bash
# docs/experiment-reference.md and each fault kind's part of it (common/faultspec/<kind>/README.md,
# one per kind folder) are checked against the parser itself, so they cannot drift:
# 1. the complete example (the ```yaml block after <!-- reference-example -->), with every kind's
#    example faults (its README's ```yaml block after <!-- kind-example -->, a `faults:` list)
#    added to its `faults`, is valid (`faultline validate`);
# 2. for every mapping in that example, an unknown key is injected and the parser's error
#    ("unknown field ... (expected a, b or c)") gives the keys the parser accepts there; each such
#    section must have a table in the reference or a kind's README (heading `### \`path\``) listing
#    exactly those keys (a kind's own key in `faults[]` is documented by its folder's README) —
#    a key the parser accepts but the reference misses fails, and so does a documented key the
#    parser rejects;
# 3. every documented key appears in the example (unless its row says "not supported yet", or
#    "rejected here" for a key a shared mapping accepts but this section refuses, such as
#    `direction` in a dependency's match), so step 2 reaches every section, including ones added
#    later.
# Usage: experiment_reference_test.sh BIN_DIR
set -euo pipefail
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec /usr/bin/python3 - "$BIN/faultline" "$ROOT" <<'PYEOF'
import atexit, copy, glob, json, os, re, shutil, subprocess, sys, tempfile
import yaml

faultline, root = sys.argv[1], sys.argv[2]
ref = os.path.join(root, "docs/experiment-reference.md")
text = open(ref, encoding="utf-8").read()
m = re.search(r"<!-- reference-example -->\s*```yaml\n(.*?)```", text, re.S)
if not m:
    sys.exit(f"FAIL: {ref}: no ```yaml block after <!-- reference-example -->")
example = yaml.safe_load(m.group(1))

# Each kind folder of common/faultspec (one with a CMakeLists.txt) documents its kind in README.md.
kind_docs = {}
for folder in sorted(glob.glob(os.path.join(root, "common/faultspec/*/CMakeLists.txt"))):
    kind = os.path.basename(os.path.dirname(folder))
    readme = os.path.join(os.path.dirname(folder), "README.md")
    if not os.path.exists(readme):
        sys.exit(f"FAIL: kind folder common/faultspec/{kind}/ has no README.md (its reference)")
    kind_text = open(readme, encoding="utf-8").read()
    km = re.search(r"<!-- kind-example -->\s*```yaml\n(.*?)```", kind_text, re.S)
    faults = yaml.safe_load(km.group(1)).get("faults") if km else None
    if not faults:
        sys.exit(f"FAIL: {readme}: no ```yaml block with a `faults:` list after <!-- kind-example -->")
    example.setdefault("faults", []).extend(faults)
    kind_docs[kind] = kind_text
example_text = yaml.safe_dump(example, sort_keys=False)
tmp = tempfile.mkdtemp(prefix="faultline-ref.")
atexit.register(shutil.rmtree, tmp, True)

def validate(doc_text):
    path = os.path.join(tmp, "x.yaml")
    with open(path, "w") as f:
        f.write(doc_text)
    r = subprocess.run([faultline, "validate", "--output", "json", path], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, json.loads(r.stdout)[0]

rc, out = validate(example_text)
if rc != 0:
    sys.exit("FAIL: the reference example is invalid:\n  " + "\n  ".join(out.get("errors", [])))
print("ok: the reference example validates")

# Documented sections: ### `path` followed by a table whose rows start with | `key` |.
documented, reserved = {}, set()
current = None
for line in "\n".join([text] + list(kind_docs.values())).splitlines():
    h = re.match(r"^#{2,4} `([^`]*)`", line)
    if h:
        current = h.group(1)
        documented.setdefault(current, set())
        continue
    if line.startswith("#"):
        current = None
        continue
    row = re.match(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", line)
    if row and current is not None:
        documented[current].add(row.group(1))
        if "not supported yet" in line or "rejected here" in line:
            reserved.add((current, row.group(1)))

# A kind's key in a fault is documented by its folder's README.
documented.setdefault("faults[]", set()).update(kind_docs)

BOGUS = "zzqxjkwv"
parser_sections, problems = {}, []

# Mappings whose keys are names the author chooses: documented once as `<parent>.<name>`.
NAMED = ("targets",)

def norm(path):
    path = re.sub(r"\[\d+\]", "[]", path)
    for parent in NAMED:
        path = re.sub(r"^" + parent + r"\.[^.\[]+", parent + ".<name>", path)
    return path

def walk(node, path, setter_path):
    if isinstance(node, dict):
        yield path, setter_path
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            yield from walk(v, sub, setter_path + [k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]", setter_path + [i])

seen_norm = set()
for path, keys in walk(example, "", []):
    if norm(path) in seen_norm:
        continue
    doc = copy.deepcopy(example)
    target = doc
    for k in keys:
        target = target[k]
    target[BOGUS] = 1
    _, out = validate(yaml.safe_dump(doc, sort_keys=False))
    want_field = f"{path}.{BOGUS}" if path else BOGUS
    accepted = None
    for e in out.get("errors", []):
        # file:line:col: field: message
        parts = e.split(": ", 2)
        if len(parts) == 3 and parts[1].endswith(want_field) and "unknown field" in parts[2]:
            mm = re.search(r"\(expected (.*)\)$", parts[2])
            accepted = set(re.split(r", | or ", mm.group(1))) if mm and mm.group(1) else set()
    if accepted is None:
        continue  # free-form mapping (labels, selector): any key is allowed
    seen_norm.add(norm(path))
    parser_sections[norm(path)] = accepted

for section, accepted in sorted(parser_sections.items()):
    if not accepted:
        continue
    if section not in documented:
        problems.append(f"section `{section}` (keys {sorted(accepted)}) has no table in the reference")
        continue
    missing = accepted - documented[section]
    extra = documented[section] - accepted
    if missing:
        problems.append(f"`{section}`: the parser accepts {sorted(missing)}, the reference does not document them")
    if extra:
        problems.append(f"`{section}`: the reference documents {sorted(extra)}, the parser rejects them")
for section in documented:
    if documented[section] and section not in parser_sections:
        problems.append(f"`{section}` is documented but the example has no such mapping "
                        f"(add it to the example so it is checked)")

# Every documented key is used in the example (so its sub-mapping, if any, is walked).
used = set()
for path, _ in walk(example, "", []):
    pass
def collect(node, path):
    if isinstance(node, dict):
        for k, v in node.items():
            used.add((norm(path), k))
            collect(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            collect(v, f"{path}[{i}]")
collect(example, "")
for section, keys in documented.items():
    for k in keys:
        if (section, k) not in used and (section, k) not in reserved:
            problems.append(f"`{section}.{k}` is documented but not used in the reference example")

for p in problems:
    print("FAIL:", p)
if problems:
    sys.exit(1)
print(f"ok: {len(parser_sections)} section(s), "
      f"{sum(len(v) for v in parser_sections.values())} key(s): reference and parser agree")
PYEOF
