# shellcheck shell=bash
# Real Podman containers for integration tests, with no registry and no image: each container
# runs from a root filesystem built here from the project's own binaries (the binary and the
# libraries ldd lists). Podman keeps its state in a private directory (containers.conf,
# storage, run root) so nothing touches the machine's own Podman. Every command is an argv array.
#
# Debian's podman 4.3 needs --runtime runc here (crun refuses the hybrid cgroup layout) and a
# containers.conf with an empty default_ulimits (its default nofile limit is above this
# machine's hard limit). Containers use --network none unless told otherwise: each still gets
# its own network namespace, and no CNI network is shared with other tests.
#
# Usage: containers_init DIR; build_rootfs ROOTFS BINARY...; container_start NAME [--label k=v]...
# -- ARGV...; podman_service SOCKET; containers_cleanup (call from the test's EXIT trap).
# Defines functions only; the caller holds the sandbox lock.

CONTAINERS_DIR=""
PODMAN=()
PODMAN_SERVICE_PID=""

containers_init() {  # containers_init DIR
  CONTAINERS_DIR=$1
  mkdir -p "$CONTAINERS_DIR/storage" "$CONTAINERS_DIR/run"
  cat >"$CONTAINERS_DIR/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  PODMAN=(env "CONTAINERS_CONF=$CONTAINERS_DIR/containers.conf" podman
          --root "$CONTAINERS_DIR/storage" --runroot "$CONTAINERS_DIR/run")
}

# Copies each binary and every library it loads (ldd) into ROOTFS at the same paths.
build_rootfs() {  # build_rootfs ROOTFS BINARY...
  local root=$1 bin lib; shift
  mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
  for bin in "$@"; do
    mkdir -p "$root$(dirname "$bin")"
    cp -L "$bin" "$root$bin"
    while read -r lib; do
      [ -n "$lib" ] || continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done < <(ldd "$bin" | awk '/=> \// {print $3} /^\t\// {print $1}')
  done
}

# Starts a detached container from ROOTFS_DIR (set by the caller) labelled faultline.test=1 plus
# the given labels; prints its id.
container_start() {  # container_start NAME [--label k=v]... -- ARGV...
  local name=$1 args=(); shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  "${PODMAN[@]}" run -d --runtime runc --name "$name" --label faultline.test=1 "${args[@]}" \
    --network none --rootfs "$ROOTFS_DIR" "$@"
}

container_pid() { "${PODMAN[@]}" inspect -f '{{.State.Pid}}' "$1"; }

# Serves the Docker Engine API for this Podman state on SOCKET until containers_cleanup.
podman_service() {  # podman_service SOCKET
  "${PODMAN[@]}" system service --time=0 "unix://$1" >"$CONTAINERS_DIR/service.log" 2>&1 &
  PODMAN_SERVICE_PID=$!
  await 20 test -S "$1" || { cat "$CONTAINERS_DIR/service.log" >&2; return 1; }
  # The first answer can take seconds (the service initialises lazily): wait for it here, so
  # callers with short deadlines (the agent's 3 s) meet a ready engine.
  await 60 curl -sf --max-time 20 --unix-socket "$1" -o /dev/null http://d/v1.41/version ||
    { cat "$CONTAINERS_DIR/service.log" >&2; return 1; }
}

containers_cleanup() {
  [ ${#PODMAN[@]} -gt 0 ] || return 0
  "${PODMAN[@]}" rm -f -t 0 --all >/dev/null 2>&1 || true
  if [ -n "$PODMAN_SERVICE_PID" ]; then kill "$PODMAN_SERVICE_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  # Podman's overlay driver bind-mounts its storage directory onto itself (and may leave a
  # container's rootfs mounted): unmount everything below our state, deepest first, then remove it.
  local mounts=() m
  while read -r m; do mounts+=("$m"); done < <(
    awk -v d="$CONTAINERS_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$CONTAINERS_DIR"
}
