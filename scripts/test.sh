#!/usr/bin/env bash
# Builds veipipe and runs the whole test suite (unit, corpus, command-line, large-file tests).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/build.sh"
build=${VEIPIPE_BUILD_DIR:-$here/build}
ctest --test-dir "$build" --output-on-failure -j2 "$@"
