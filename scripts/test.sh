#!/usr/bin/env bash
# Installs what is missing, builds, then runs the whole test suite through CTest: unit tests
# first, then the integration tests (real namespaces, one at a time: they share the sandbox).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup
# The fuzz targets run in the ordinary build (tests/fuzz/smoke_main.cpp); the second, instrumented
# build is opt-in (scripts/fuzz.sh for longer runs).
if [ "${FAULTLINE_FUZZ_INSTRUMENTED:-0}" = 1 ]; then build_fuzz; fi

cd "$BUILD_DIR"
log "unit tests"
ctest --output-on-failure --label-exclude integration --parallel "$(nproc)" --timeout 300
log "integration tests (serial)"
ctest --output-on-failure --label-regex integration --timeout 600
