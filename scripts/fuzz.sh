#!/usr/bin/env bash
# Real fuzzing: builds the libFuzzer targets with ASan+UBSan into build-fuzz/ (clang-14) and runs
# each for SECONDS (default 300) from a copy of its hand-made corpus (tests/fuzz/run_fuzz.sh).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   TARGET: experiment_parser agent_request
#        dns_packet faultspec (default: all). Exit non-zero on the first finding (crash file kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(experiment_parser agent_request dns_packet faultspec)
install_packages
build_fuzz
for t in "${targets[@]}"; do
  log "fuzzing $t for ${seconds}s"
  "$FAULTLINE_ROOT/tests/fuzz/run_fuzz.sh" libfuzzer "$FAULTLINE_ROOT/build-fuzz/bin/fuzz_$t" \
    "$FAULTLINE_ROOT/tests/fuzz/corpus/$t" "$seconds"
done
