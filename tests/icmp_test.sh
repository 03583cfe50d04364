#!/usr/bin/env bash
# The `icmp` source checked by tshark over 100,000 generated echo requests woven into a small
# veigen background: no bad IPv4 or ICMP checksum, type 8 code 0, sequence numbers 1..65535 then
# wrapping (16 bits, as ping's), the first request at the background's first packet, and gaps of
# exactly 1/rate (100 µs) between requests, read at nanosecond precision.
#
# Usage: tests/icmp_test.sh path/to/veipipe path/to/veigen
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/veigen"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
require icmp_test tshark timeout awk dd "$veipipe" "$veigen"

dir=$(mktemp -d "${TMPDIR:-/tmp}/icmp_test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$dir" || exit 1

limit=120 # seconds for any one command: a hang fails instead of blocking
count=100000
expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
  if [[ $2 == "$3" ]]; then pass; else fail "$1" "expected: $2" "actual:   $3"; fi
}
# tshark with IPv4 checksum validation on; tshark 4.0 always validates ICMP checksums (it has no
# icmp.check_checksum preference, see `tshark -G defaultprefs | grep -i checksum`).
ts() { timeout "$limit" tshark -n -o ip.check_checksum:TRUE "$@" 2>/dev/null; }
bad_filter='ip.checksum.status == "Bad" || icmp.checksum.status == "Bad"'
count_matching() { ts -r "$1" -Y "$2" | wc -l; }

timeout "$limit" "$veigen" -o bg.pcap --count 1000 --rate 1kpps --start 1700000000 >/dev/null 2>gen.err ||
  fail "veigen background" "$(cat gen.err)"
timeout "$limit" "$veipipe" run -q -e "pcap(bg.pcap) -> m: merge(end=all) -> file(out.pcap, precision=ns)
  icmp(dst=10.0.0.9, rate=10kpps, count=$count) -> m" 2>run.err
rc=$?
expect_eq "veipipe run exits 0 ($(head -c 300 run.err))" 0 "$rc"

expect_eq "tshark sees $count ICMP packets" "$count" "$(count_matching out.pcap icmp)"
expect_eq "no bad IPv4 or ICMP checksum" 0 "$(count_matching out.pcap "$bad_filter")"

# The filter does catch damage: one copy with a broken IPv4 checksum, one with a broken ICMP one.
offset_of() { # offset_of RECORD FIELD-OFFSET: in a pcap of 98-byte frames (Ethernet, 56-byte payload)
  echo $((24 + $1 * (16 + 98) + 16 + $2))
}
ts -r out.pcap -Y icmp -F pcap -w icmp.pcap
head -c "$(offset_of 4 -16)" icmp.pcap >four.pcap # the first 4 requests: a record boundary
corrupt() { # corrupt FILE BYTE-OFFSET
  printf '\xa5' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
cp four.pcap bad_ip.pcap && corrupt bad_ip.pcap "$(offset_of 1 $((14 + 10)))"
cp four.pcap bad_icmp.pcap && corrupt bad_icmp.pcap "$(offset_of 2 $((14 + 20 + 2)))"
expect_eq "the copy holds 4 requests" 4 "$(count_matching four.pcap icmp)"
expect_eq "the filter sees no bad checksum in the intact copy" 0 "$(count_matching four.pcap "$bad_filter")"
expect_eq "the filter catches a corrupted IPv4 checksum" 1 "$(count_matching bad_ip.pcap 'ip.checksum.status == "Bad"')"
expect_eq "the filter catches a corrupted ICMP checksum" 1 "$(count_matching bad_icmp.pcap 'icmp.checksum.status == "Bad"')"

# One pass over every request: type, code, sequence, and gaps in integer nanoseconds (a double
# cannot hold epoch nanoseconds exactly, so seconds and fractions are subtracted apart).
ts -r out.pcap -Y icmp -T fields -e frame.time_epoch -e icmp.type -e icmp.code -e icmp.seq >fields.txt
read -r first_bg _ < <(ts -r bg.pcap -c 1 -T fields -e frame.time_epoch)
awk -v first_bg="$first_bg" -v gap=100000 '
  function ns9(time, parts) { split(time, parts, "."); return parts[1] "." substr(parts[2] "000000000", 1, 9) }
  { split($1, t, ".") }
  NR == 1 && ns9($1) != ns9(first_bg) { printf "first request at %s, not at the background start %s\n", $1, first_bg }
  $2 != 8 || $3 != 0 { bad_type++; if (bad_type == 1) printf "frame %d: type %s code %s\n", NR, $2, $3 }
  $4 != NR % 65536 { bad_seq++; if (bad_seq == 1) printf "request %d: sequence %s, expected %d\n", NR, $4, NR % 65536 }
  NR > 1 && (t[1] - s) * 1000000000 + (t[2] - ns) != gap {
    bad_gap++; if (bad_gap == 1) printf "request %d at %s: gap from the one before is not %d ns\n", NR, $1, gap }
  { s = t[1]; ns = t[2] }
  END { printf "%d bad types, %d bad sequence numbers, %d bad gaps\n", bad_type, bad_seq, bad_gap }
' fields.txt >report.txt
expect_eq "types, sequence numbers (1..65535, 0, 1, ...), first time, 100 µs gaps" \
  "0 bad types, 0 bad sequence numbers, 0 bad gaps" "$(paste -sd '|' report.txt)"
expect_eq "sequence numbers wrap after 65535" "65535 0 1" \
  "$(awk 'NR >= 65535 && NR <= 65537 { printf "%s%s", sep, $4; sep = " " }' fields.txt)"

summary icmp_test
