#!/usr/bin/env bash
# Shared by demo.sh and test.sh: install what is missing (Debian 12, as root) and build.
set -euo pipefail

FAULTLINE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${FAULTLINE_BUILD_DIR:-$FAULTLINE_ROOT/build}"

# Debian packages the build, the sandbox and the tests need.
FAULTLINE_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libgrpc-dev libabsl-dev libre2-dev libc-ares-dev zlib1g-dev libboost-filesystem1.74-dev
  libboost-dev libboost-filesystem-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcurl4-openssl-dev libldns-dev libmnl-dev libnftables-dev libnetfilter-queue-dev
  libcpp-httplib-dev libgtest-dev libgmock-dev libssl-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql libhowardhinnant-date-dev tzdata
  clang-14 libclang-rt-14-dev openssl
  dnsmasq-base unbound nftables iptables iproute2 dnsutils dnsperf curl procps jq iperf3
  libhttp-parser-dev haproxy socat prometheus
  libxml2-utils chromium fonts-dejavu-core
  python3-yaml systemd
  clang-format shellcheck ccache
  podman runc containernetworking-plugins containerd python3-grpcio python3-protobuf
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "faultline: run this as root (it installs packages and creates network namespaces)" >&2
    exit 2
  fi
}

install_packages() {
  local missing=() wanted=("${FAULTLINE_PACKAGES[@]}")
  # The console's page (console/web/) is built with Node.js and npm. Debian's packages unless a
  # node and npm are already there (a Node.js from elsewhere bundles its npm, and Debian's npm
  # would conflict with it).
  command -v node >/dev/null || wanted+=(nodejs)
  command -v npm >/dev/null || wanted+=(npm)
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all Debian packages present"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The programs scripts/demo.sh runs: the CLI, and what `faultline sandbox up` starts on the sandbox
# hosts (controller/sandbox/sandbox.cpp: the agent, the sample key-value and orders services and
# their supervisor).
DEMO_TARGETS=(faultline faultline-agent faultline-sample-kv faultline-sample-orders
  faultline-sample-supervisor)

# configure ON|OFF [CMAKE_ARGS...]: configures $BUILD_DIR once (CMAKE_ARGS only then);
# FAULTLINE_BUILD_TESTS=OFF leaves tests/ and bench/ out of the build files. ON also turns the tests
# on in a build directory configured without them.
# A build directory it creates compiles through ccache when ccache is there (FAULTLINE_CCACHE=0
# turns that off): a fresh clone built before on this machine, in any folder (CI's), is then
# mostly cache hits instead of a ~14-minute cold build on two cores. Paths under the clone are
# hashed relative to the build directory (CCACHE_BASEDIR, CCACHE_NOHASHDIR) so that clones in
# different folders share entries; a CCACHE_* setting of the caller wins.
configure() {
  local tests=$1
  shift
  local gen=() launcher=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  if [ "${FAULTLINE_CCACHE:-1}" = 1 ] && command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$FAULTLINE_ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S "$FAULTLINE_ROOT" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DFAULTLINE_BUILD_TESTS="$tests" "${launcher[@]}" "$@" >/dev/null
  elif [ "$tests" = ON ] && grep -q '^FAULTLINE_BUILD_TESTS:BOOL=OFF' "$BUILD_DIR/CMakeCache.txt"; then
    cmake -B "$BUILD_DIR" -DFAULTLINE_BUILD_TESTS=ON >/dev/null
  fi
}

# Everything, the test suite included (test.sh). A build directory this creates has line-table
# debug information only (-g1: file:line in backtraces and gdb; full -g costs about a fifth more
# compile CPU and much larger objects to link). Configure build/ yourself for a full -g build.
build() {
  log "building into $BUILD_DIR"
  configure ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
  cmake --build "$BUILD_DIR" --parallel "$(nproc)"
}

# Only what the demo runs (DEMO_TARGETS and what they link); no test binaries. A build directory
# the demo creates has no debug information (-g costs about a third more compile time); test.sh
# keeps that setting when it later reuses the directory (delete build/ for a -g build).
build_demo() {
  log "building the demo's programs into $BUILD_DIR"
  configure OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG"
  cmake --build "$BUILD_DIR" --parallel "$(nproc)" --target "${DEMO_TARGETS[@]}"
}

# The libFuzzer targets (tests/fuzz) in their own ASan+UBSan build with clang; only those targets
# and what they link are built (about 10 CPU-minutes from scratch). scripts/fuzz.sh builds and runs
# them; the main build's CTest runs them for a bounded time when they exist (test.sh builds them
# only with FAULTLINE_FUZZ_INSTRUMENTED=1: the suite's own smoke run uses the ordinary build).
build_fuzz() {
  local dir="$FAULTLINE_ROOT/build-fuzz"
  log "building the fuzz targets into $dir"
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    CC=clang-14 CXX=clang++-14 cmake -S "$FAULTLINE_ROOT" -B "$dir" "${gen[@]}" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAULTLINE_FUZZ=ON >/dev/null
  fi
  cmake --build "$dir" --parallel "$(nproc)" --target fuzz_experiment_parser fuzz_agent_request fuzz_dns_packet fuzz_faultspec
}

setup() {
  require_root
  install_packages
  build
}

setup_demo() {
  require_root
  install_packages
  build_demo
}
