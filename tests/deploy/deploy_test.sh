#!/usr/bin/env bash
# Checks deploy/ without a cluster or systemd running: the systemd units pass
# `systemd-analyze verify`, the agent unit keeps only the capabilities the agent needs, every
# Kubernetes manifest is well-formed YAML with the fields we rely on, every flag that a unit or a
# manifest passes exists in that binary's --help, and the container image's runtime stage installs
# a Debian package for every shared library the binaries load.
# Usage: deploy_test.sh BIN_DIR. A binary that is not built yet (faultline-controller before the
# daemon lands) is reported and makes the test SKIP (exit 77) after everything else passed.
set -euo pipefail
BIN="$(cd "${1:?usage: $0 BIN_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="$ROOT/deploy"
WORK="$(mktemp -d /tmp/op-deploy.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
PY=/usr/bin/python3  # Debian's, with python3-yaml
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
missing_binaries=()

# Every `--flag` in `args` must appear in `binary --help`.
check_flags() {  # where binary flag...
  local where=$1 binary=$2; shift 2
  if [ ! -x "$BIN/$binary" ]; then
    missing_binaries+=("$binary (used by $where)")
    return 0
  fi
  local help; help="$("$BIN/$binary" --help 2>&1)"
  for flag in "$@"; do
    grep -qE -- "(^|[ ,])${flag}([ ,=]|$)" <<<"$help" ||
      fail "$where passes $flag, which '$binary --help' does not list"
  done
  pass "$where: $# flag(s) of $binary exist (${*})"
}

# --- systemd units ---------------------------------------------------------------------------
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (Debian package systemd)"
for unit in "$DEPLOY"/systemd/*.service; do
  name="$(basename "$unit")"
  binary="$(sed -n 's|^ExecStart=/usr/local/bin/\([^ ]*\).*|\1|p' "$unit")"
  [ -n "$binary" ] || fail "$name: no ExecStart=/usr/local/bin/..."
  # Verify against the built binary (or /bin/true while it is not built).
  target="$BIN/$binary"; [ -x "$target" ] || target=/bin/true
  sed "s|/usr/local/bin/$binary|$target|" "$unit" >"$WORK/$name"
  out="$(systemd-analyze verify "$WORK/$name" 2>&1)" || fail "systemd-analyze verify $name: $out"
  # Anything it prints about our unit is a problem too (it warns about unknown keys, exit 0).
  if grep -v "^$" <<<"$out" | grep -q "$name"; then fail "systemd-analyze verify $name: $out"; fi
  pass "systemd-analyze verify $name"
  # Flags on the (backslash-continued) ExecStart line.
  flags=$(awk '/^ExecStart=/{on=1} on{print; if ($0 !~ /\\$/) on=0}' "$unit" |
          grep -oE -- '(^|[[:space:]])--[a-z0-9-]+' | tr -d ' \t' | sort -u)
  # shellcheck disable=SC2086
  check_flags "$name" "$binary" $flags
done

agent_unit="$DEPLOY/systemd/faultline-agent.service"
caps="$(sed -n 's/^CapabilityBoundingSet=//p' "$agent_unit")"
[ "$caps" = "CAP_NET_ADMIN CAP_NET_RAW CAP_KILL" ] || fail "agent bounding set is '$caps'"
[ "$(sed -n 's/^AmbientCapabilities=//p' "$agent_unit")" = "$caps" ] || fail "ambient caps differ"
for want in "NoNewPrivileges=yes" "ProtectSystem=strict" "PrivateTmp=yes" "Restart=always" \
            "ReadWritePaths=/var/lib/faultline/agent"; do
  grep -qx "$want" "$agent_unit" || fail "agent unit lacks $want"
done
grep -v "^#" "$agent_unit" | grep -q "CAP_SYS_ADMIN" && fail "agent unit grants CAP_SYS_ADMIN"
state_dir="$(awk '/--state-dir/{print $2}' "$agent_unit")"
[ "$state_dir" = /var/lib/faultline/agent ] || fail "--state-dir '$state_dir' is not the writable path"
pass "agent unit: only NET_ADMIN NET_RAW KILL, no new privileges, read-only system but its state dir"

# --- Kubernetes manifests ----------------------------------------------------------------------
"$PY" - "$DEPLOY/kubernetes" >"$WORK/k8s-flags" <<'PYEOF'
import glob, os, sys, yaml
d = sys.argv[1]
docs = []
for path in sorted(glob.glob(os.path.join(d, "*.yaml"))):
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            name = os.path.basename(path)
            for key in ("apiVersion", "kind", "metadata"):
                if key not in doc:
                    sys.exit(f"{name}: a document lacks {key}")
            if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != "faultline":
                sys.exit(f"{name}: {doc['kind']}/{doc['metadata'].get('name')} not in namespace faultline")
            docs.append((name, doc))
kinds = {(doc["kind"], doc["metadata"]["name"]): (name, doc) for name, doc in docs}
def need(kind, name):
    if (kind, name) not in kinds:
        sys.exit(f"missing {kind}/{name}")
    return kinds[(kind, name)][1]
need("DaemonSet", "faultline-agent")
# Two variants of the agent DaemonSet (one is applied): nodes only, and nodes + pods (CRI).
agent_sets = {name: doc for name, doc in docs if doc["kind"] == "DaemonSet"}
assert set(agent_sets) == {"agent-daemonset.yaml", "agent-daemonset-workloads.yaml"}, sorted(agent_sets)
for fname, ds in agent_sets.items():
    spec = ds["spec"]["template"]["spec"]
    assert spec.get("hostNetwork") is True, f"{fname}: hostNetwork must be true"
    c = spec["containers"][0]
    caps = c["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"], f"{fname}: drop ALL capabilities first"
    assert c["securityContext"].get("privileged") is False, f"{fname}: agent must not be privileged"
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    args = c.get("args", [])
    if fname == "agent-daemonset.yaml":
        assert sorted(caps["add"]) == ["KILL", "NET_ADMIN", "NET_RAW"], f"{fname}: caps {caps['add']}"
        assert spec.get("hostPID") is False, f"{fname}: hostPID must stay off"
    else:
        assert sorted(caps["add"]) == ["KILL", "NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"], \
            f"{fname}: caps {caps['add']}"
        assert spec.get("hostPID") is True, f"{fname}: pods' pids need hostPID"
        sock = args[args.index("--cri-socket") + 1]
        assert sock in mounts and mounts[sock].get("readOnly") is True, \
            f"{fname}: --cri-socket {sock} is not mounted read-only"
        vol = {v["name"]: v for v in spec["volumes"]}[mounts[sock]["name"]]
        assert vol["hostPath"] == {"path": sock, "type": "Socket"}, f"{fname}: CRI socket volume {vol}"
        assert mounts.get("/run/netns", {}).get("mountPropagation") == "HostToContainer", \
            f"{fname}: /run/netns must follow the node's mounts (HostToContainer)"
dep = need("Deployment", "faultline-controller")
assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
svc = need("Service", "faultline-controller")
assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(), \
    "controller Service selects no controller pod"
need("StatefulSet", "faultline-postgres")
need("Service", "faultline-postgres")
# Every mounted volume exists; every container's flags are printed for the --help check.
for name, doc in docs:
    tmpl = doc.get("spec", {}).get("template", {}).get("spec")
    if not tmpl:
        continue
    vols = {v["name"] for v in tmpl.get("volumes", [])}
    vols |= {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
    for c in tmpl["containers"]:
        for m in c.get("volumeMounts", []):
            assert m["name"] in vols, f"{name}: volumeMount {m['name']} has no volume"
        cmd = c.get("command", [])
        if cmd and cmd[0].startswith("/usr/local/bin/faultline"):
            flags = [a for a in c.get("args", []) if a.startswith("--")]
            print(name, os.path.basename(cmd[0]), *flags)
PYEOF
pass "Kubernetes manifests parse and hold the agent DaemonSet, controller Deployment+Service, PostgreSQL"
while read -r where binary flags; do
  # shellcheck disable=SC2086
  check_flags "$where" "$binary" $flags
done <"$WORK/k8s-flags"

# --- Container image ---------------------------------------------------------------------------
cf="$DEPLOY/Containerfile"
grep -q "^FROM debian:12 AS build" "$cf" || fail "Containerfile: build stage is not Debian 12"
runtime_pkgs="$(awk '/^FROM debian:12-slim/{on=1} on' "$cf" | tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$')"
# What the runtime stage ends up with: the named packages, everything they depend on, and the
# base image's essential packages.
# shellcheck disable=SC2086
{
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $runtime_pkgs 2>/dev/null | grep -v '^ ' | sed 's/:amd64$//'
  dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' | awk '$2=="yes" || $3=="required" {print $1}'
} | sort -u >"$WORK/image-pkgs"
# Which package owns each library: one dpkg -S call for all of them (it is slow per call).
# Debian 12 is usr-merged: dpkg may know a file under /usr/lib, /lib or its real name.
declare -A owner
candidates=()
for binary in faultline-agent faultline faultline-controller; do
  [ -x "$BIN/$binary" ] || continue
  for lib in $(ldd "$BIN/$binary" | awk '/=> \//{print $3}'); do
    real="$(readlink -f "$lib")"
    candidates+=("$lib" "/usr$lib" "$real" "/usr$real")
  done
done
while IFS= read -r line; do
  pkg="${line%%: *}"; path="${line#*: }"
  owner["$path"]="${pkg%%:*}"
done < <(dpkg -S "${candidates[@]}" 2>/dev/null | grep -v '^diversion' || true)
for binary in faultline-agent faultline faultline-controller; do
  [ -x "$BIN/$binary" ] || continue
  n=0
  for lib in $(ldd "$BIN/$binary" | awk '/=> \//{print $3}'); do
    real="$(readlink -f "$lib")"
    pkg=""
    for candidate in "$lib" "/usr$lib" "$real" "/usr$real"; do
      pkg="${owner[$candidate]:-}"
      [ -z "$pkg" ] || break
    done
    [ -n "$pkg" ] || fail "$binary loads $lib, which no Debian package owns"
    grep -qx "$pkg" "$WORK/image-pkgs" ||
      fail "$binary loads $lib from $pkg, which the Containerfile's runtime stage does not install"
    n=$((n + 1))
  done
  pass "Containerfile runtime stage provides all $n shared libraries of $binary"
done

if [ ${#missing_binaries[@]} -gt 0 ]; then
  echo "SKIP: not built, flags unchecked: ${missing_binaries[*]}"
  exit 77
fi
