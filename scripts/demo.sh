#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run
# recoverd in the foreground on its bundled demo configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
echo "recoverd: API on http://127.0.0.1:7411, demo service on http://127.0.0.1:8080 (Ctrl-C stops)" >&2
exec build/recoverd "$@"
