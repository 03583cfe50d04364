#!/usr/bin/env bash
# Checks the veigen trace generator end to end with the Wireshark/tcpdump tools.
# Usage: tests/veigen_check.sh path/to/veigen
set -uo pipefail

veigen=${1:?usage: $0 path/to/veigen}
for tool in capinfos tshark tcpdump editcap sha256sum; do
  command -v "$tool" >/dev/null || { echo "veigen_check: $tool not found" >&2; exit 1; }
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

passed=0 failed=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what" >&2
  fi
}

# Every generator run is time-boxed so an argument bug cannot run away and fill the disk.
gen() { timeout 60 "$veigen" "$@" 2>>"$dir/stderr"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
equal() { [[ "$1" == "$2" ]]; }
differ() { [[ "$1" != "$2" ]]; }
between() { (($2 <= $1 && $1 <= $3)); }

# tshark prints a warning when run as root; only its data output matters here.
ts() { tshark "$@" 2>/dev/null; }
bad_checksums() {
  ts -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y 'ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0' | wc -l
}
flip_byte() {  # flip_byte FILE OFFSET
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf '%b' "\\x$(printf %02x $((b ^ 0xFF)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# 1. Determinism.
a=$dir/a.pcap
gen -o "$a" --count 2000 --mix imix --seed 7
gen -o "$dir/a2.pcap" --count 2000 --mix imix --seed 7
gen -o "$dir/a3.pcap" --count 2000 --mix imix --seed 8
check "same seed gives identical output" equal "$(sha "$a")" "$(sha "$dir/a2.pcap")"
check "different seed gives different output" differ "$(sha "$a")" "$(sha "$dir/a3.pcap")"
check "stdout output matches file output" \
  equal "$(gen -o - --count 2000 --mix imix --seed 7 | sha256sum | cut -d' ' -f1)" "$(sha "$a")"
check "summary line reports packets and bytes" \
  grep -qxF "veigen: wrote 2000 packets, $(stat -c %s "$a") bytes to $a" "$dir/stderr"

# 2. Readable by the standard tools.
check "capinfos counts 2000 packets" equal "$(capinfos -c -M "$a" | awk '/Number of packets/ {print $NF}')" 2000
check "tcpdump reads the file" tcpdump -r "$a" -w /dev/null -q 2>/dev/null

# 3. Checksums, and that the checksum filter can actually fail.
check "no bad IPv4/TCP/UDP checksums" equal "$(bad_checksums "$a")" 0
cp "$a" "$dir/ip_bad.pcap"
flip_byte "$dir/ip_bad.pcap" $((24 + 16 + 22))  # first packet's IPv4 TTL
check "corrupted IPv4 header is detected" equal "$(bad_checksums "$dir/ip_bad.pcap")" 1
cp "$a" "$dir/l4_bad.pcap"
flip_byte "$dir/l4_bad.pcap" $((24 + 16 + 56))  # first packet's TCP/UDP payload
check "corrupted TCP/UDP payload is detected" equal "$(bad_checksums "$dir/l4_bad.pcap")" 1
check "trace has TCP packets" test "$(ts -r "$a" -Y tcp | wc -l)" -gt 0
check "trace has UDP packets" test "$(ts -r "$a" -Y udp | wc -l)" -gt 0

# 4. Size mix, timestamp precision and constant timing.
gen -o "$dir/64.pcap" --count 1000 --mix 64
check "--mix 64 gives 64-byte frames only" \
  equal "$(ts -r "$dir/64.pcap" -T fields -e frame.len -e frame.cap_len | sort -u)" $'64\t64'
gen -o "$dir/ns.pcap" --count 10 --precision ns
check "--precision ns writes a nanosecond file" grep -q "nanoseconds" <(capinfos "$dir/ns.pcap")
gen -o "$dir/rate.pcap" --count 5 --timing constant --rate 1000pps --start 1700000000.5
check "--rate 1000pps gives 1 ms gaps from --start" \
  equal "$(ts -r "$dir/rate.pcap" -T fields -e frame.time_epoch | paste -sd' ')" \
  "1700000000.500000000 1700000000.501000000 1700000000.502000000 1700000000.503000000 1700000000.504000000"

# 5. --size stops within one maximum-size record (16-byte header + 1514-byte frame) of the target.
gen -o "$dir/size.pcap" --size 10MiB
check "--size 10MiB lands just past 10 MiB" between "$(stat -c %s "$dir/size.pcap")" 10485760 $((10485760 + 16 + 1514))

# 6. pcapng (veipipe's encoder): the same records as the pcap of the same arguments, as editcap
# converts them back, in either precision; --size counts the blocks' bytes.
for precision in us ns; do
  gen -o "$dir/$precision.pcapng" --count 2000 --mix imix --seed 7 --precision "$precision"
  gen -o "$dir/$precision-same.pcap" --count 2000 --mix imix --seed 7 --precision "$precision"
  format=pcap
  [[ $precision == ns ]] && format=nsecpcap
  editcap -F "$format" "$dir/$precision.pcapng" "$dir/$precision-back.pcap"
  check "pcapng ($precision) holds the pcap's records" cmp -s "$dir/$precision-back.pcap" "$dir/$precision-same.pcap"
done
check "pcapng by the name: a pcapng capinfos reads" grep -q "File type:.*pcapng" <(capinfos "$dir/us.pcapng")
gen -o "$dir/size.pcapng" --size 10MiB
check "--size 10MiB of pcapng lands just past 10 MiB" between "$(stat -c %s "$dir/size.pcapng")" 10485760 $((10485760 + 32 + 1516))

# 7. Error handling.
expect_exit() {  # expect_exit CODE ARGS...
  local want=$1
  shift
  timeout 10 "$veigen" "$@" >/dev/null 2>"$dir/err"
  [[ $? == "$want" ]]
}
for args in "--count 5" "-o /dev/null" "-o /dev/null --count 5 --size 1MiB" "-o /dev/null --count -5" \
  "-o /dev/null --size 4XB" "-o /dev/null --count 5 --mix fixed:59" "-o /dev/null --count 5 --mix fixed:9019" \
  "-o /dev/null --count 5 --rate fast" "-o /dev/null --count 5 --timing bursty" \
  "-o /dev/null --count 5 --precision ms" "-o /dev/null --count 5 --format ngpcap" "-o /dev/null --count 5 --flows 0" \
  "-o /dev/null --count 5 --start yesterday" "-o /dev/null --count 5 --snaplen 100" "-o /dev/null --bogus"; do
  # shellcheck disable=SC2086  # word splitting of the argument list is intended
  check "bad arguments '$args' exit 2" expect_exit 2 $args
done
check "unwritable path exits 1" expect_exit 1 -o /nonexistent/x.pcap --count 5
check "unwritable path is named in the message" grep -q /nonexistent/x.pcap "$dir/err"

echo "veigen_check: $passed passed, $failed failed"
((failed == 0))
