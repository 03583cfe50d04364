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

# The transform tests' comparisons of captures.
records() { tail -c +25 "$1"; }  # a classic pcap's records, without the file header
# Same records but for UDP checksums tcprewrite writes as 0 ("none") when its update brings them
# to 0; RFC 768 says 0xffff, and veipipe writes that.
same_but_udp_zero() {
  { cmp -l <(records "$1") <(records "$2") || true; } | awk '$2 != 377 || $3 != 0 { bad++ } END { exit bad > 0 || NR % 2 }'
}
# How many packets of a capture tshark finds with a bad IPv4, TCP or UDP checksum.
checksums_bad() {
  tshark -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad" || udp.checksum.status == "Bad"' 2>/dev/null | wc -l
}
