# shellcheck shell=bash
# A private containerd with its CRI plugin for the CRI integration tests: root, state, sockets
# and CNI configuration under a directory of the test's, nothing of a system containerd touched.
# Sourced after scratch.sh (fail, await). Defines functions only.
#
# What this machine needs (docs/kubernetes.md has the details):
#  - restrict_oom_score_adj: the CRI gives the sandbox oom_score_adj -998, and root here lacks
#    CAP_SYS_RESOURCE, so runc's child dies ("can't get final child's PID from pipe: EOF");
#    restricted, containerd never sets a score below its own.
#  - the sandbox image is built locally and imported (cri/build_pause_image.sh): no registry.
#  - Debian's CNI plugins (/usr/lib/cni): a bridge (CRI_BRIDGE, CRI_SUBNET) with host-local IPAM.
CRI_BRIDGE=flcri0
CRI_SUBNET=10.79.0.0/24
CRI_PAUSE_IMAGE=localhost/faultline-pause:1

# start_containerd DIR: starts containerd on DIR/containerd.sock; sets CTD_PID and CTD_SOCK.
# DIR must be an absolute, existing directory of the test's own.
start_containerd() {
  local dir=$1
  [[ "$dir" == /tmp/?* && -d "$dir" ]] || fail "start_containerd: not a test directory: '$dir'"
  mkdir -p "$dir/cni"
  printf '%s\n' '{"cniVersion": "1.0.0", "name": "faultline-cri", "plugins": [' \
    "  {\"type\": \"bridge\", \"bridge\": \"$CRI_BRIDGE\", \"isGateway\": true, \"ipMasq\": false," \
    "   \"ipam\": {\"type\": \"host-local\", \"ranges\": [[{\"subnet\": \"$CRI_SUBNET\"}]]}}," \
    '  {"type": "loopback"}]}' >"$dir/cni/10-faultline-cri.conflist"
  printf '%s\n' 'version = 2' "root = \"$dir/root\"" "state = \"$dir/state\"" \
    '[grpc]' "  address = \"$dir/containerd.sock\"" \
    '[ttrpc]' "  address = \"$dir/containerd.sock.ttrpc\"" \
    '[plugins."io.containerd.grpc.v1.cri"]' "  sandbox_image = \"$CRI_PAUSE_IMAGE\"" \
    '  restrict_oom_score_adj = true' \
    '  [plugins."io.containerd.grpc.v1.cri".cni]' '    bin_dir = "/usr/lib/cni"' \
    "    conf_dir = \"$dir/cni\"" >"$dir/containerd.toml"
  containerd --config "$dir/containerd.toml" >"$dir/containerd.log" 2>&1 &
  CTD_PID=$!
  CTD_SOCK="$dir/containerd.sock"
  await 20 test -S "$CTD_SOCK" || fail "containerd did not start: $(tail -n 5 "$dir/containerd.log")"
}

# import_pause_image DIR: builds the sandbox image into DIR and imports it for the CRI.
import_pause_image() {
  "$(dirname "${BASH_SOURCE[0]}")/build_pause_image.sh" "$1/pause.tar" "$CRI_PAUSE_IMAGE"
  ctr --address "$CTD_SOCK" -n k8s.io images import "$1/pause.tar" >/dev/null ||
    fail "ctr images import of the pause image failed"
}

# stop_containerd DIR: stops containerd, removes the CNI bridge and unmounts whatever containerd
# left mounted below DIR (deepest first). The caller removes DIR.
stop_containerd() {
  local dir=$1 m mounts=()
  if [ -n "${CTD_PID:-}" ]; then
    kill "$CTD_PID" 2>/dev/null || true
    wait "$CTD_PID" 2>/dev/null || true
  fi
  ip link del "$CRI_BRIDGE" 2>/dev/null || true
  while read -r m; do mounts+=("$m"); done < <(
    awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
