#!/usr/bin/env bash
# build_pause_image.sh OUT.tar [NAME:TAG]: builds the CRI test's sandbox ("pause") image without a
# registry: pause.c compiled static, as the only file of one layer, written as a docker-archive
# tarball (manifest.json with RepoTags) that `ctr images import` reads. Default name
# localhost/faultline-pause:1.
set -euo pipefail
out=$1
name=${2:-localhost/faultline-pause:1}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work=$(mktemp -d /tmp/faultline-pause.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs" "$work/image"
cc -static -O2 -o "$work/rootfs/pause" "$here/pause.c"
tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/image/layer.tar" pause
diff_id="sha256:$(sha256sum "$work/image/layer.tar" | cut -d' ' -f1)"
cat >"$work/image/config.json" <<EOC
{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["$diff_id"]},"history":[{"created_by":"tests/integration/cri/build_pause_image.sh"}]}
EOC
cat >"$work/image/manifest.json" <<EOC
[{"Config":"config.json","RepoTags":["$name"],"Layers":["layer.tar"]}]
EOC
tar -C "$work/image" --owner=0 --group=0 --numeric-owner -cf "$out" manifest.json config.json layer.tar
