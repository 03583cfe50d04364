#!/usr/bin/env bash
# Every capture of the corpus that libpcap reads, of every link type, through every link-type-aware
# transform, beside the peer that does the same job: filter= and filter() against `tcpdump -r F -w`,
# snaplen() against `editcap -s`, rewrite() against tcprewrite (behind Ethernet; elsewhere, where
# tcprewrite leaves IPv4 as it is, against tshark's reading). Also two captures rewritten here in
# the other byte order (a big-endian BSD loopback one, whose address family is big-endian too, and
# a raw-IP one), which no corpus file is.
#
# Left out: the files the manifest says libpcap refuses (tcpdump -r fails on them too: no IDB,
# archaic versions, mixed link types in one pcapng, cut or garbage headers), so there is nothing to
# compare with; veipipe's own handling of them is cli_test's and the corpus test's.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") corpus=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require linktype_test tcpdump editcap tcprewrite tshark python3 cmp "$veipipe"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { timeout 60 "$veipipe" run -q -e "$1" 2>"$tmp/err"; }
ran() { run "$1" || [[ $? == 3 ]]; } # 3: finished, an input damaged (reported, every valid record kept)
magic() { od -An -tx1 -N4 "$1" | tr -d ' '; }
# Classic pcap of nanoseconds (written by this host) or not.
precision() { [[ $(magic "$1") == 4d3cb2a1 ]] && echo nano || echo micro; }

# The other byte order: file and record headers swapped, packets as they are but for the BSD
# loopback address family, which a big-endian host writes big-endian.
swap() {
  python3 - "$1" "$2" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
src = '<' if d[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
dst = '>' if src == '<' else '<'
out = bytearray(struct.pack(dst + 'IHHiIII', *struct.unpack(src + 'IHHiIII', d[:24])))
linktype = struct.unpack(src + 'I', d[20:24])[0]
at = 24
while at + 16 <= len(d):
    head = struct.unpack(src + 'IIII', d[at:at + 16])
    data = d[at + 16:at + 16 + head[2]]
    if linktype == 0 and len(data) >= 4:
        data = struct.pack(dst + 'I', struct.unpack(src + 'I', data[:4])[0]) + data[4:]
    out += struct.pack(dst + 'IIII', *head) + data
    at += 16 + head[2]
open(sys.argv[2], 'wb').write(out)
EOF
}

inputs=()
while IFS=$'\t' read -r name _ _ _ _ _ _ _ reads _; do
  [[ $reads == yes* ]] && inputs+=("$corpus/$name")
done < <(tail -n +2 "$corpus/MANIFEST.tsv")
swap "$corpus/tcpdump-quic_retry.pcap" "$tmp/null-big-endian.pcap" && inputs+=("$tmp/null-big-endian.pcap")
swap "$corpus/tcpdump-babel_rtt.pcap" "$tmp/raw-big-endian.pcap" && inputs+=("$tmp/raw-big-endian.pcap")

# veipipe keeps records longer than their file's snaplen whole (README, Semantics); libpcap and
# editcap cut them to it. The peers get a copy declaring snaplen 262144, so that all see the same
# packets (little-endian classic pcap, the only kind such records come in here).
raise_snaplen() { # raise_snaplen IN OUT (may be IN)
  if [[ $(magic "$1") == d4c3b2a1 ]] && (($(od -An -tu4 -j16 -N4 "$1") < 262144)); then
    { head -c 16 "$1"; printf '\x00\x00\x04\x00'; tail -c +21 "$1"; } >"$tmp/raised.pcap"
    mv "$tmp/raised.pcap" "$2"
  elif [[ $1 != "$2" ]]; then
    cp "$1" "$2"
  fi
}

# The same packets, in the same link type: the records byte for byte (times included), or, for a
# capture whose times veipipe writes differently by design (README, Semantics), the packets.
declare -A times_differ=(
  # A fraction of 1 s or more (invalid) is carried into the seconds; libpcap passes it on as it is.
  [tcpdump-timestamp_invalid_nano.pcap]=1
  # Its one packet is at 2^32 s, which a pcap cannot hold: veipipe drops it with a warning (exit
  # 3); tcpdump and editcap write it at 0 s (1970).
  [tcpdump-time_2106_overflow.pcapng]=1
)
listing() { tcpdump -r "$1" -nn -t -xx 2>/dev/null | grep -v '^$'; }
same_packets() { # same_packets VEIPIPE PEER INPUT
  if [[ -v times_differ[$(basename "$3")] ]]; then
    if [[ $(basename "$3") == tcpdump-time_2106_overflow.pcapng ]]; then
      [[ -z $(listing "$1") ]]
    else
      cmp -s <(listing "$1") <(listing "$2")
    fi
  else
    cmp -s <(records "$1") <(records "$2") && cmp -s <(od -An -j20 -N4 "$1") <(od -An -j20 -N4 "$2")
  fi
}

# filter= and filter() keep what tcpdump keeps, the same records (times and bytes) in the same
# link type; an expression the link type cannot match is refused by both, veipipe with exit 2.
# filter() after a source is compiled from the same source's file as filter= (byte order, link
# type): three expressions are enough to show it.
expressions=("ip6" "udp port 53" "arp" "ip" "tcp" "icmp or icmp6" "not ip")
filter_section() {
  for input in "${inputs[@]}"; do
    raise_snaplen "$input" "$tmp/peer.pcap"
    peer=$tmp/peer.pcap
    for i in "${!expressions[@]}"; do
      expression=${expressions[i]}
      what="$(basename "$input") '$expression'"
      forms=("pcap($input, disorder=keep, filter=\"$expression\")")
      ((i < 3)) && forms+=("pcap($input, disorder=keep) -> filter(\"$expression\")")
      for form in "${forms[@]}"; do
        run "$form -> file($tmp/out.pcap)"
        rc=$?
        if ! tcpdump -r "$peer" --time-stamp-precision="$(precision "$tmp/out.pcap" 2>/dev/null)" -w "$tmp/tcpdump.pcap" \
          "$expression" 2>"$tmp/tcpdump.err"; then
          if ((rc == 2)); then pass; else fail "$what: tcpdump refuses it, veipipe exits 2" "rc $rc; tcpdump: $(cat "$tmp/tcpdump.err")"; fi
        elif ((rc != 0 && rc != 3)); then
          fail "$what: $form runs" "$(cat "$tmp/err")"
        elif same_packets "$tmp/out.pcap" "$tmp/tcpdump.pcap" "$input"; then
          pass
        else
          fail "$what: $form keeps what tcpdump keeps" \
            "veipipe $(tcpdump -r "$tmp/out.pcap" 2>/dev/null | wc -l) records, tcpdump $(tcpdump -r "$tmp/tcpdump.pcap" 2>/dev/null | wc -l)"
        fi
      done
    done
  done
  echo "linktype_test: filters compared with tcpdump on ${#inputs[@]} captures"
}

# snaplen(N) cuts what editcap -s N cuts, and the header declares N, as editcap's does for a
# classic pcap (from a pcapng it keeps the interface's snaplen). editcap does not know link types
# MFR (182) and the one with reserved bits set: it gets a copy labelled Ethernet, since cutting
# does not look at the link layer, and the records are compared.
snaplen_section() {
  for input in "${inputs[@]}"; do
    raise_snaplen "$input" "$tmp/peer.pcap"
    peer=$tmp/peer.pcap
    if ! editcap -F pcap "$peer" /dev/null 2>/dev/null; then
      { head -c 20 "$peer"; printf '\x01\x00\x00\x00'; tail -c +25 "$peer"; } >"$tmp/ethernet.pcap"
      peer=$tmp/ethernet.pcap
    fi
    for n in 1 14 200; do
      what="$(basename "$input") snaplen($n)"
      if ! ran "pcap($input, disorder=keep) -> snaplen($n) -> file($tmp/out.pcap)"; then
        fail "$what runs" "$(cat "$tmp/err")"
        continue
      fi
      format=pcap
      [[ $(precision "$tmp/out.pcap") == nano ]] && format=nsecpcap
      if ! editcap -F "$format" -s "$n" "$peer" "$tmp/editcap.pcap" 2>"$tmp/editcap.err"; then
        fail "$what: editcap -s $n reads it" "$(cat "$tmp/editcap.err")"
      elif [[ $peer == "$tmp/ethernet.pcap" ]] && cmp -s <(records "$tmp/out.pcap") <(records "$tmp/editcap.pcap"); then
        pass
      elif same_packets "$tmp/out.pcap" "$tmp/editcap.pcap" "$input" &&
        { [[ $(magic "$input") == 0a0d0d0a ]] || cmp -s <(od -An -j16 -N4 "$tmp/out.pcap") <(od -An -j16 -N4 "$tmp/editcap.pcap"); }; then
        pass
      else
        fail "$what cuts what editcap -s $n cuts"
      fi
    done
  done
  echo "linktype_test: snaplen compared with editcap on ${#inputs[@]} captures"
}

# rewrite() against tcprewrite. tcprewrite 4.4.3 also sets every IPv4 total length to what was
# captured and recomputes every IPv4, TCP and UDP checksum, valid or not (tcpedit.c:
# fix_ipv4_length, fix_ipv4_checksums), whatever it is asked; veipipe changes only what it is asked
# to. Both are given tcprewrite's output with no option, in which those are done already.
# The maps move every unicast address but 192/3 and keep them unicast: tcprewrite 4.4.3 puts 01:00:5e
# in the first three bytes of the Ethernet address of a packet whose IPv4 address is multicast once
# mapped, even over --enet-dmac (en10mb.c: dlt_en10mb_ipv4_multicast_mac_update, #563; the other
# three bytes stay, so it is not the group's address either), and 33:33 and the last four bytes of
# the IPv6 address in the Ethernet source or destination of a packet whose address is unicast, even
# over --enet-smac (dlt_en10mb_ipv6_multicast_mac_update tests the opposite); veipipe leaves them to
# srcmac= and dstmac=, compared with --enet-smac/--enet-dmac on IPv4 traffic in transform_test.
pnat="0.0.0.0/2:64.0.0.0/2 64.0.0.0/2:0.0.0.0/2 128.0.0.0/3:160.0.0.0/3 160.0.0.0/3:128.0.0.0/3" # ARP's too
# What those maps do to an address, for tshark's view of the packets (first octet moved).
moved='function move(a, o) { split(a, o, "."); o[1] += o[1] < 64 ? 64 : o[1] < 128 ? -64 : o[1] < 160 ? 32 : o[1] < 192 ? -32 : 0
  return a == "" ? a : o[1] "." o[2] "." o[3] "." o[4] }'
srcmap="10.0.0.0/8:172.16.0.0/8 192.168.0.0/16:10.1.0.0/16" # host bits in a network ignored
rewrites=("ip=\"$pnat\"|--pnat=${pnat// /,}" "srcip=\"$srcmap\"|--srcipmap=${srcmap// /,}" "dstip=\"$srcmap\"|--dstipmap=${srcmap// /,}")
# IPv4 and ARP addresses as tshark reads them (the outer ones), and its bad checksums.
addresses() {
  tshark -r "$1" -T fields -E occurrence=f -e ip.src -e ip.dst -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4 2>/dev/null
}
rewrite_section() {
  for input in "${inputs[@]}"; do
    local linktype name
    linktype=$(tcpdump -r "$input" -c1 2>&1 >/dev/null | grep -o 'link-type [^ ]*')
    name=$(basename "$input")
    raise_snaplen "$input" "$tmp/peer.pcap"
    if [[ $linktype != *EN10MB ]]; then
      # tcprewrite 4.4.3 leaves IPv4 addresses as they were beyond Ethernet (on the raw-IP, IPv4
      # and Linux cooked captures here it changes none, or has no plugin, nor in 802.11 data frames
      # with or without radiotap, built to try it: veipipe refuses those); veipipe's are checked with
      # tshark: every address moved as the maps say (ICMP errors' inner headers stay, as with
      # tcprewrite), and no checksum made bad.
      run "pcap($input, disorder=keep) -> rewrite(ip=\"$pnat\") -> file($tmp/out.pcap)"
      rc=$?
      if ((rc == 0 || rc == 3)); then
        if cmp -s <(addresses "$input" | awk -F'\t' -v OFS='\t' "$moved"' { for (i = 1; i <= NF; i++) $i = move($i) } 1') \
          <(addresses "$tmp/out.pcap") && (($(checksums_bad "$tmp/out.pcap") == $(checksums_bad "$input"))); then pass
        else fail "$name ($linktype): rewrite moves every IPv4 address, checksums as valid as before"; fi
      elif ((rc == 2)) && grep -q "cannot find IPv4 addresses in link type" "$tmp/err" && ! addresses "$input" | grep -q '[0-9]'; then
        # Link types it does not parse (802.11, CAN, ...): refused, where no address is to be seen.
        pass
      else fail "$name ($linktype): rewrite runs, or refuses a link type without IPv4" "$(cat "$tmp/err")"; fi
      if [[ $linktype != *IEEE802_11* ]] && ! run "pcap($input) -> rewrite(srcmac=02:00:00:00:00:01) -> file($tmp/out.pcap)" &&
        grep -q "Ethernet addresses can only be set on EN10MB" "$tmp/err"; then
        pass # tcprewrite ignores --enet-smac where there is no Ethernet header; veipipe refuses it.
      elif [[ $linktype != *IEEE802_11* ]]; then fail "$name: srcmac= is refused on $linktype"; fi
      continue
    fi
    tcprewrite -i "$tmp/peer.pcap" -o "$tmp/fixed.pcap"
    raise_snaplen "$tmp/fixed.pcap" "$tmp/fixed.pcap"
    for rewrite in "${rewrites[@]}"; do
      local params=${rewrite%%|*} options
      read -ra options <<<"${rewrite#*|}"
      tcprewrite "${options[@]}" -i "$tmp/fixed.pcap" -o "$tmp/tcprewrite.pcap"
      run "pcap($tmp/fixed.pcap, disorder=keep) -> rewrite($params) -> file($tmp/out.pcap)"
      rc=$?
      if ((rc == 0 || rc == 3)) && same_but_udp_zero "$tmp/out.pcap" "$tmp/tcprewrite.pcap"; then pass
      else fail "$name rewrite($params) equals tcprewrite ${options[*]}" "$(cat "$tmp/err")"; fi
    done
  done
  echo "linktype_test: rewrite compared with tcprewrite and tshark on ${#inputs[@]} captures"
}

case ${3:-all} in
  filter) filter_section ;;
  snaplen) snaplen_section ;;
  rewrite) rewrite_section ;;
  *) filter_section && snaplen_section && rewrite_section ;;
esac
summary "linktype_test ${3:-all}"
