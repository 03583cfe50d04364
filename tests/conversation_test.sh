#!/usr/bin/env bash
# One conversation generator checked from the command line by independent decoders (issue 12):
# tests/conversations/STAGE.sh says how to call the stage and what to look for; this driver runs,
# for IPv4 and IPv6, `count` conversations (5,000 each by default) and checks with tshark that every
# frame is valid (no malformed packet, no expert warning or error and no TCP analysis flag the
# protocol does not mean, no bad checksum with validation on) and that every frame carrying
# payload is dissected as the stage's protocol; that two runs give identical bytes; then the
# stage's own checks (reassembled bytes equal to the files asked for...).
#
# A stage file defines:
#   call V COUNT    prints the description's source call for IP version V (4 or 6), COUNT repetitions
#   proto           the display filter of the protocol (`http`, `dns`...)
#   allowed         (optional) a display filter of the frames whose TCP analysis flags and expert
#                   warnings the protocol means (a scan's resets)
#   packets_per     (optional) frames one conversation gives, checked exactly
#   default_count   (optional) conversations per IP version when COUNT is not given (5,000: 10,000 over both versions)
#   own_checks V    (optional) further checks on out$V.pcap (call pass/fail from checks.sh)
#
# Usage: tests/conversation_test.sh path/to/veipipe STAGE [COUNT]
# Environment: VEIPIPE_CONVERSATIONS_MAX caps COUNT.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe STAGE [COUNT]"
veipipe=$(realpath "${1:?$usage}") || exit 2
stage=${2:?$usage}
require "conversation_test $stage" tshark tcpflow timeout "$veipipe"

dir=$(mktemp -d "${TMPDIR:-/tmp}/conversation_test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
data="$tests_dir/conversations/data"
allowed=''
packets_per=''
own_checks() { :; }
# shellcheck source=/dev/null
source "$tests_dir/conversations/$stage.sh"
count=${3:-${default_count:-5000}}
# The sanitizer builds (scripts/test.sh) check the generators' own code, which a few hundred
# conversations exercise as well as thousands: they cap the count to keep CI short.
if [[ -n ${VEIPIPE_CONVERSATIONS_MAX:-} ]] && ((count > VEIPIPE_CONVERSATIONS_MAX)); then count=$VEIPIPE_CONVERSATIONS_MAX; fi
cd "$dir" || exit 1

limit=300 # seconds for any one command: a hang fails instead of blocking
for v in 4 6; do
  description="$(call "$v" "$count") -> file(out$v.pcap)"
  if ! timeout "$limit" "$veipipe" run -q -e "$description" 2>run.err; then
    fail "IPv$v: veipipe run -e '$description'" "$(head -c 600 run.err)"
    continue
  fi
  timeout "$limit" "$veipipe" run -q -e "$(call "$v" "$count") -> file(again$v.pcap)" 2>/dev/null
  if cmp -s "out$v.pcap" "again$v.pcap"; then pass; else fail "IPv$v: two runs of the same description differ"; fi
  problems=$(protocol_problems "out$v.pcap" "$allowed")
  if [[ -z $problems ]]; then pass; else fail "IPv$v: tshark finds problems (frame, expert messages)" "$problems"; fi
  n=$(undissected "out$v.pcap" "$proto")
  if [[ $n == 0 ]]; then pass; else fail "IPv$v: $n frames with payload not dissected as $proto"; fi
  frames=$(tshark -n -r "out$v.pcap" 2>/dev/null | wc -l)
  version=$(tshark -n -r "out$v.pcap" -Y "ip$([[ $v == 6 ]] && echo v6)" 2>/dev/null | wc -l)
  if [[ $frames == "$version" && $frames -gt 0 ]]; then pass; else fail "IPv$v: $version of $frames frames are IPv$v"; fi
  if [[ -n $packets_per ]]; then
    if [[ $frames == $((packets_per * count)) ]]; then pass; else
      fail "IPv$v: $frames frames, expected $packets_per per conversation x $count"
    fi
  fi
  own_checks "$v"
done
summary "conversation_test $stage"
