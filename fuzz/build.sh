#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/*.c) with clang, ASan and UBSan into
# DIR/fuzz/fuzz_<target>. Usage: fuzz/build.sh [DIR]   (default DIR: build-fuzz)
# The whole tree is compiled with -fsanitize=fuzzer-no-link, so the fuzzer
# sees coverage of the code under test, not only of the target file.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-fuzz}
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ]; then
  echo "fuzz/build.sh: clang not found (scripts/deps.sh installs it)" >&2
  exit 2
fi
cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRECOVERD_SANITIZE=ON -DRECOVERD_FUZZ=ON -DRECOVERD_TESTS=OFF \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$dir" -j"$(nproc)" \
  --target fuzz_request fuzz_http_response fuzz_url fuzz_config >/dev/null
