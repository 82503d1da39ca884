#!/usr/bin/env bash
# The README's second command: install what is missing, lint, build (plain
# and with ASan+UBSan, each layer link-checked), then run every test: cmocka
# unit tests through ctest (both builds), the fuzz targets (fuzz/, a minute
# each) and the end-to-end pytest suite against the sanitized binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# The code's shape first: no upward include (layers), clang-format, clang-tidy.
scripts/lint.sh layers format tidy
scripts/build.sh build
scripts/build.sh build-asan -DRECOVERD_SANITIZE=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd build-asan && ctest --output-on-failure -j2)
# The release build's too: a handle closed on a stack slot that then left
# scope passed under ASan and aborted here (test_containment, session 11).
(cd build && ctest --output-on-failure -j2)
# The parsers of outside bytes, 60 s each under libFuzzer + ASan + UBSan (about 2 min).
scripts/fuzz.sh 60
RECOVERD_BUILD="$PWD/build-asan" pytest-3 -q tests/e2e "$@"
