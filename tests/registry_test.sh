#!/usr/bin/env bash
# A bad parameter value of any stage is a description error at the command line: `veipipe check -e`
# on a description with one bad value (one case per stage kind, tests/test_registry.cpp walks them
# all) exits 2, prints one `<where>:LINE:COL: error:` with COL the column of the bad value and a caret
# line `| ^` under it, and creates no file (no output, no socket, nothing).
#
# Usage: tests/registry_test.sh path/to/veipipe
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe"
veipipe=$(realpath "${1:?$usage}") || exit 2
require registry_test find sort diff timeout grep "$veipipe"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/registry_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
limit=60 # seconds allowed to every run

mkdir "$tmp/work" "$tmp/logs" || exit 1
cd "$tmp/work" || exit 1
# A small background made by veipipe itself: 5 ICMP echo requests on Ethernet.
timeout "$limit" "$veipipe" run -q -e 'icmp(dst=10.0.0.1, count=5) -> file(bg.pcap)' 2>"$tmp/logs/bg.err" ||
  { echo "registry_test: making the background failed: $(cat "$tmp/logs/bg.err")" >&2; exit 1; }

snapshot() { find . -printf '%p %y %s %T@\n' | sort; }

# refused NAME DESCRIPTION: DESCRIPTION has one `@` just before the bad value; it is removed, and
# `veipipe check -e` on the rest must exit 2 with one error, `<command line>:LINE:COL: error:` at
# the `@`, a caret line whose `^` is under that column, and leave the directory as it was.
refused() {
  local name=$1 marked=$2
  local description=${marked/@/} before=${marked%%@*}
  local line col prefix
  line=$(($(printf '%s' "$before" | grep -c '') + 0))
  [[ -z $before || $before == *$'\n' ]] && line=$((line + 1))
  prefix=${before##*$'\n'}
  col=$((${#prefix} + 1))
  local err=$tmp/logs/$name.err rc state_before state_after
  state_before=$(snapshot)
  timeout "$limit" "$veipipe" check -e "$description" >"$tmp/logs/$name.out" 2>"$err"
  rc=$?
  state_after=$(snapshot)
  local -a ctx=("description: $description" "expected at $line:$col" "exit status: $rc" "stderr:")
  mapfile -t -O 4 ctx < <(head -n 8 "$err" | sed 's/^/  | /')
  if ((rc == 2)); then pass; else fail "$name: exit 2" "${ctx[@]}"; fi
  if grep -qF "<command line>:$line:$col: error: " "$err"; then pass; else fail "$name: an error at $line:$col" "${ctx[@]}"; fi
  # One bad value, one error (not the same one repeated).
  if (($(grep -c ': error: ' "$err") == 1)); then pass; else fail "$name: exactly one error" "${ctx[@]}"; fi
  # The caret line: `<padding> | <col-1 spaces>^`.
  local caret
  caret=$(grep -m1 -E '^ +\| *\^~*$' "$err")
  caret=${caret#*| }
  if [[ -n $caret && ${caret%%^*} == "$(printf '%*s' $((col - 1)) '')" ]]; then
    pass
  else
    fail "$name: a caret under column $col" "${ctx[@]}"
  fi
  if [[ $state_before == "$state_after" ]]; then pass; else fail "$name: veipipe check created or changed a file" "$(diff <(echo "$state_before") <(echo "$state_after"))"; fi
}

# One case per stage kind, and a few of the stages' own range checks.
refused timeline_source 'pcap(bg.pcap) -> m: merge -> file(out.pcap); icmp(dst=10.0.0.1, ttl=@256) -> m'
refused timeline_source_type 'pcap(bg.pcap, at=@5 apples) -> file(out.pcap)'
refused event_source 'pcap(bg.pcap) -> m: merge -> file(out.pcap)
control(path=@"") -> m'
refused event_source_range 'pcap(bg.pcap) -> m: merge -> file(out.pcap)
live(lo, snaplen=@0) -> m'
refused event_source_opened 'pcap(bg.pcap) -> m: merge -> file(out.pcap)
live(lo, filter=@"tcp port") -> m'
refused transform 'pcap(bg.pcap) -> snaplen(@0) -> file(out.pcap)'
refused transform_string 'pcap(bg.pcap) -> rewrite(ip=@1.2.3:) -> file(out.pcap)'
refused transform_opened 'pcap(bg.pcap) -> filter(@"tcp port") -> file(out.pcap)'
refused merger 'pcap(bg.pcap) -> merge(end=@nosuchchoice) -> file(out.pcap)'
refused pacer 'pcap(bg.pcap) -> pace(loop=@-1) -> file(out.pcap)'
refused pacer_rates 'pcap(bg.pcap) -> pace(pps=1kpps, mbps=@1mbps) -> file(out.pcap)'
refused sink 'pcap(bg.pcap) -> file(out.pcap, precision=@ps)'
refused sink_range 'pcap(bg.pcap) -> nic(lo, retries=@-1)'
refused sink_size 'pcap(bg.pcap) -> file(out.pcap, snaplen=@0)'

summary registry_test
