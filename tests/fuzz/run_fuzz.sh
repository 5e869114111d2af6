#!/usr/bin/env bash
# run_fuzz.sh FUZZER CORPUS_DIR SECONDS: runs a libFuzzer target for a bounded time from a copy
# of the hand-made corpus (the checked-in corpus is never written to). Exit 0 without a finding;
# the fuzzer's exit code (and its crash file under the work directory, kept) on a finding;
# 77 (skipped) when the fuzz build is missing.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
if [ ! -x "$fuzzer" ]; then
  echo "SKIP: $fuzzer not built (configure build-fuzz: see tests/fuzz/README.md)"
  exit 77
fi
fuzzer=$(realpath "$fuzzer") corpus=$(realpath "$corpus")
work=$(mktemp -d "/tmp/faultline-fuzz.XXXXXX")
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"
cd "$work"
set +e
# -rss_limit_mb and -timeout turn memory blow-ups and hangs (e.g. alias bombs) into findings.
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" 2>"$work/log"
rc=$?
set -e
tail -n 15 "$work/log"
if [ $rc -ne 0 ]; then
  echo "FINDING: exit $rc; artifacts and log kept in $work"
  exit $rc
fi
rm -rf "$work"
