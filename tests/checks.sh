# Counting checks for the shell tests; source it, call pass/fail, end with `summary NAME`.
# shellcheck shell=bash
passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { # fail WHAT [CONTEXT-LINE...]
  failed=$((failed + 1))
  printf 'FAIL: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '    %s\n' "$line" >&2; done
}
# The closing line CI reads (`N passed, M failed`), and the status: non-zero when anything failed.
summary() {
  echo "$1: $passed passed, $failed failed"
  ((failed == 0))
}
# require NAME TOOL...: every tool is a command on PATH or an executable path, else exit 1 naming it.
require() {
  local name=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: $tool not found or not executable (scripts/setup.sh installs the tools)" >&2; exit 1; }
  done
}
