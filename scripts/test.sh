#!/usr/bin/env bash
# Installs what is missing, builds, then runs the whole test suite through CTest: unit tests
# first, then the integration tests (real namespaces, one at a time: they share the sandbox).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup
build_fuzz

cd "$BUILD_DIR"
log "unit tests"
ctest --output-on-failure --label-exclude integration --parallel "$(nproc)" --timeout 300
log "integration tests (serial)"
ctest --output-on-failure --label-regex integration --timeout 600
