#!/usr/bin/env bash
# Install the Debian packages recoverd needs to build, test and lint, only those
# missing: quick and silent when everything is present. Run as root.
set -euo pipefail

PACKAGES=(
  gcc make cmake pkg-config
  libuv1-dev libcurl4-openssl-dev libjansson-dev
  libsqlite3-dev libfyaml-dev libcmocka-dev
  python3 python3-pytest curl procps
  monitoring-plugins-basic
  libpq-dev libhiredis-dev postgresql redis-server
  clang-format clang-tidy # scripts/lint.sh; .clang-format and .clang-tidy are for 14
  clang libclang-rt-14-dev # scripts/fuzz.sh: libFuzzer with ASan and UBSan
  valgrind # bench/probecost: instructions per probe under callgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: run as root (or with sudo) to install packages" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
