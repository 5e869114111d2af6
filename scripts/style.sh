#!/usr/bin/env bash
# The style rules of the tree, in one place for developers and for CTest (tests/style):
#   scripts/style.sh format        clang-format -i over every C++ file in scope (.clang-format)
#   scripts/style.sh check-format  clang-format --dry-run -Werror over the same files (CTest style.clang_format)
#   scripts/style.sh check-shell   shellcheck -S warning over every shell script (CTest style.shellcheck)
# Scope, C++: every .h/.cc/.cpp/.c under agent/ common/ controller/ bench/ tests/ (product code and
# the tests and benchmarks that exercise it; generated code lives in the build directory, outside).
# Scope, shell: every *.sh, and every file whose first line is a sh/bash shebang, under scripts/
# tests/ bench/ deploy/, and .ci/run.
# Exit status: 0 clean (or formatted), 1 findings (listed on stderr), 2 usage or a missing tool.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

need() {
  command -v "$1" >/dev/null || {
    echo "style.sh: $1 is not installed (Debian package $2; scripts/lib.sh installs it)" >&2
    exit 2
  }
}

cpp_files() {
  find agent common controller bench tests -type f \
    \( -name '*.h' -o -name '*.cc' -o -name '*.cpp' -o -name '*.c' \) -print0 | sort -z
}

shell_files() {
  local f
  {
    find scripts tests bench deploy -type f -print0
    if [ -f .ci/run ]; then printf '%s\0' .ci/run; fi
  } | sort -z | while IFS= read -r -d '' f; do
    case "$f" in
      *.sh) printf '%s\0' "$f" ;;
      *) if head -n 1 "$f" | grep -qE '^#!.*[/ ](ba|da)?sh( |$)'; then printf '%s\0' "$f"; fi ;;
    esac
  done
}

case "${1:-}" in
  format)
    need clang-format clang-format
    cpp_files | xargs -0 clang-format -i
    ;;
  check-format)
    need clang-format clang-format
    if ! cpp_files | xargs -0 clang-format --dry-run -Werror; then
      echo "style.sh: C++ files above are not clang-formatted; run scripts/style.sh format" >&2
      exit 1
    fi
    ;;
  check-shell)
    need shellcheck shellcheck
    if ! shell_files | xargs -0 shellcheck -S warning -f gcc; then
      echo "style.sh: shellcheck warnings above" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: scripts/style.sh format|check-format|check-shell" >&2
    exit 2
    ;;
esac
