#!/usr/bin/env bash
# run_fuzz.sh libfuzzer|smoke FUZZER CORPUS_DIR SECONDS: runs a fuzz target for a bounded time
# from a copy of the hand-made corpus (the checked-in corpus is never written to).
#   libfuzzer: a build-fuzz libFuzzer executable (ASan+UBSan); 77 (skipped) when it is not built.
#   smoke:     the ordinary build's fuzz_smoke_<target> (smoke_main.cpp): the corpus, then
#              deterministic mutations for at most SECONDS.
# Exit 0 without a finding; the fuzzer's exit code (or 128+signal), with its crash file and log
# kept under the work directory, on a finding.
set -euo pipefail
mode=$1 fuzzer=$2 corpus=$3 seconds=$4
if [ ! -x "$fuzzer" ]; then
  echo "SKIP: $fuzzer not built (scripts/fuzz.sh builds build-fuzz: see tests/fuzz/README.md)"
  exit 77
fi
fuzzer=$(realpath "$fuzzer") corpus=$(realpath "$corpus")
work=$(mktemp -d "/tmp/faultline-fuzz.XXXXXX")
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"
cd "$work"
set +e
case "$mode" in
  # -rss_limit_mb and -timeout turn memory blow-ups and hangs (e.g. alias bombs) into findings.
  libfuzzer) "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" 2>"$work/log" ;;
  smoke) "$fuzzer" "$work/corpus" --seconds "$seconds" --runs 1000000 --artifacts "$work" \
    >"$work/log" 2>&1 ;;
  *) echo "usage: $0 libfuzzer|smoke FUZZER CORPUS_DIR SECONDS" >&2; exit 2 ;;
esac
rc=$?
set -e
tail -n 15 "$work/log"
if [ $rc -ne 0 ]; then
  echo "FINDING: exit $rc; artifacts and log kept in $work"
  exit $rc
fi
rm -rf "$work"
