#!/usr/bin/env bash
# The transforms from the command line, each against the peer that does the same job:
# snaplen() against `editcap -s` (byte for byte, on every classic little-endian microsecond capture
# of the corpus and a generated trace), filter() against `tcpdump -w` with the same expression,
# chop() against `editcap -C -N`, rewrite() against `tcprewrite` (--pnat, --srcipmap, --enet-smac/dmac), with every IPv4, TCP and
# UDP checksum of the output verified by tshark.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2") corpus=$(realpath "$3")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require transform_test editcap tcpdump tcprewrite tshark cmp "$veipipe" "$veigen"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { timeout 60 "$veipipe" run -q -e "$1" 2>"$tmp/err"; }

timeout 60 "$veigen" -o "$tmp/gen.pcap" --count 20000 --seed 7 2>/dev/null

# snaplen(N) writes what editcap -s N writes, header included. Left out: captures whose records
# exceed their header's snaplen (editcap clips them to it, as libpcap does; veipipe keeps them
# whole) and those editcap refuses. disorder=keep: editcap keeps times that go back as they are.
inputs=("$tmp/gen.pcap")
while IFS=$'\t' read -r name _ _ _ _ format _ _ reads notes; do
  [[ $format == "pcap usec LE"* && $reads == yes* && $notes != *"caplen > snaplen"* ]] && inputs+=("$corpus/$name")
done < <(tail -n +2 "$corpus/MANIFEST.tsv")
for input in "${inputs[@]}"; do
  for n in 1 60 1500; do
    editcap -F pcap -s "$n" "$input" "$tmp/editcap.pcap" 2>/dev/null || continue
    if run "pcap($input, disorder=keep) -> snaplen($n) -> file($tmp/out.pcap)" && cmp -s "$tmp/out.pcap" "$tmp/editcap.pcap"; then pass
    else fail "snaplen($n) equals editcap -s $n: $(basename "$input")" "$(cat "$tmp/err")"; fi
  done
done
echo "transform_test: snaplen compared with editcap on ${#inputs[@]} captures"

# chop(N) cuts what editcap -C -N cuts, record for record (the file header's snaplen aside: veipipe
# declares the largest any input may deliver).
for input in "${inputs[@]}"; do
  for n in 1 4 100; do
    editcap -F pcap -C "-$n" "$input" "$tmp/editcap.pcap" 2>/dev/null || continue
    if run "pcap($input, disorder=keep) -> chop($n) -> file($tmp/out.pcap)" &&
      cmp -s <(records "$tmp/out.pcap") <(records "$tmp/editcap.pcap"); then pass
    else fail "chop($n) equals editcap -C -$n: $(basename "$input")" "$(cat "$tmp/err")"; fi
  done
done

# filter(EXPR) keeps what tcpdump keeps, after a merge too.
for expression in "tcp" "udp and port 53" "ip[8] > 64"; do
  tcpdump -r "$tmp/gen.pcap" -w "$tmp/tcpdump.pcap" "$expression" 2>/dev/null
  if run "pcap($tmp/gen.pcap) -> m: merge -> filter(\"$expression\") -> file($tmp/out.pcap)" &&
    cmp -s <(records "$tmp/out.pcap") <(records "$tmp/tcpdump.pcap"); then pass
  else fail "filter(\"$expression\") keeps what tcpdump keeps" "$(cat "$tmp/err")"; fi
done
if run "pcap($tmp/gen.pcap) -> filter(\"tcp and\") -> file($tmp/out.pcap)"; then fail "a bad expression is refused"
elif grep -q "^<command line>:1:.*error: .*syntax error" "$tmp/err"; then pass
else fail "a bad expression's error points into the description" "$(cat "$tmp/err")"; fi

# rewrite() against tcprewrite (same_but_udp_zero: the one difference allowed).
check_rewrite() { # check_rewrite PARAMS TCPREWRITE-OPTIONS... : same bytes, valid checksums
  local params=$1
  shift
  tcprewrite "$@" -i "$tmp/gen.pcap" -o "$tmp/tcprewrite.pcap"
  if ! run "pcap($tmp/gen.pcap) -> rewrite($params) -> file($tmp/out.pcap)"; then
    fail "rewrite($params) runs" "$(cat "$tmp/err")"
    return
  fi
  if same_but_udp_zero "$tmp/out.pcap" "$tmp/tcprewrite.pcap"; then pass; else fail "rewrite($params) equals tcprewrite $*"; fi
  local bad
  bad=$(checksums_bad "$tmp/out.pcap")
  if ((bad == 0)); then pass; else fail "rewrite($params): every checksum verifies" "$bad packets with a bad checksum"; fi
}
check_rewrite 'ip="192.168.0.0/16:10.99.0.0/16"' --pnat=192.168.0.0/16:10.99.0.0/16
check_rewrite 'srcip="192.168.0.0/16:10.99.0.0/16"' --srcipmap=192.168.0.0/16:10.99.0.0/16
check_rewrite 'dstip="172.16.0.0/12:10.0.0.0/12 192.168.1.0/24:10.1.1.0/24"' \
  --dstipmap=172.16.0.0/12:10.0.0.0/12,192.168.1.0/24:10.1.1.0/24
check_rewrite 'srcmac=02:00:00:00:00:01, dstmac=02:00:00:00:00:02' --enet-smac=02:00:00:00:00:01 --enet-dmac=02:00:00:00:00:02
moved=$(tshark -r "$tmp/out.pcap" -Y 'eth.src == 02:00:00:00:00:01 && eth.dst == 02:00:00:00:00:02' 2>/dev/null | wc -l)
if ((moved == 20000)); then pass; else fail "every frame has the new MAC addresses" "$moved of 20000"; fi

if run "pcap($tmp/gen.pcap) -> rewrite(ip=\"10.0.0.0/8:172.16.0.0/12\") -> file($tmp/out.pcap)"; then
  fail "a map between different prefix lengths is refused"
elif grep -q "^<command line>:1:.*error: .*prefix" "$tmp/err"; then pass
else fail "the map's error points into the description" "$(cat "$tmp/err")"; fi
summary transform_test
