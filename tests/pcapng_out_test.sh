#!/usr/bin/env bash
# pcapng output (issue 13, items 1 and 2), read back by independent decoders. For each description
# the same run is written as pcap and as pcapng: tshark, capinfos and libpcap (tcpdump -r) count the
# same records in both, `editcap -F pcap|nsecpcap` of the pcapng gives the pcap's records byte for
# byte, frame.interface_name names each packet's source (the labels say which), and with
# comments=true frame.comment holds each labelled packet's label. Then an Ethernet, an 802.11
# radiotap and a Linux cooked capture merged into one pcapng: the same (time, link type, bytes)
# multiset as `mergecap -F pcapng` of the three, time-ordered with ties by source rank.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2") corpus=$(realpath "$3")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require pcapng_out_test tshark capinfos tcpdump editcap mergecap python3 cmp "$veipipe" "$veigen"
tmp=$(mktemp -d)
trap 'mountpoint -q "$tmp/full" && umount "$tmp/full"; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export WIRESHARK_CONFIG_DIR=$tmp/wireshark
mkdir -p "$WIRESHARK_CONFIG_DIR"

"$veigen" -o bg.pcap --count 400 --rate 1000pps --seed 3 --start 1700000000.000001 2>/dev/null
"$veigen" -o bgns.pcap --count 200 --rate 1000pps --seed 4 --precision ns --start 1700000000.123456789 2>/dev/null

count_tshark() { tshark -n -r "$1" 2>/dev/null | wc -l; }
count_tcpdump() { tcpdump -n -r "$1" 2>/dev/null | wc -l; }
count_capinfos() { capinfos -Mc "$1" | awk -F': *' '/Number of packets/ { print $2 }'; }

# same NAME DESCRIPTION-WITH-@OUT@ PCAP-KIND: runs the description twice, out.pcap and out.pcapng.
same() {
  local name=$1 description=$2 kind=$3
  for ext in pcap pcapng; do
    if ! timeout 60 "$veipipe" run -q -e "${description//@OUT@/$name.$ext}" 2>"$name.$ext.err"; then
      fail "$name: the $ext run failed" "$(cat "$name.$ext.err")"
      return
    fi
  done
  local n
  n=$(count_tshark "$name.pcap")
  ((n > 0)) || fail "$name: the pcap output holds no record"
  for count in count_tshark count_tcpdump count_capinfos; do
    if [[ $($count "$name.pcapng") == "$n" ]]; then pass; else fail "$name: $count finds $($count "$name.pcapng") records in the pcapng, $n in the pcap"; fi
  done
  editcap -F "$kind" "$name.pcapng" "$name.back.pcap"
  if cmp -s <(records "$name.back.pcap") <(records "$name.pcap"); then pass; else fail "$name: editcap -F $kind of the pcapng differs from the pcap output"; fi
}

same copy "pcap(bg.pcap) -> file(@OUT@)" pcap
same ns-precision "pcap(bg.pcap) -> file(@OUT@, precision=ns)" nsecpcap
same us-of-ns "pcap(bgns.pcap) -> file(@OUT@, precision=us)" pcap
merge="pcap(bg.pcap) -> m: merge -> file(@OUT@, precision=ns)
icmp(dst=10.0.0.9, count=5, rate=50pps, at=+20ms) -> m
web: http(count=2, at=+100ms) -> m"
same merge "$merge" nsecpcap

# Labels and interfaces: the labels file says which packets came from which source.
"$veipipe" run -q -e "${merge//@OUT@/labelled.pcapng, comments=true, labels=labels.csv}"
tshark -r labelled.pcapng -T fields -E separator=/t -e frame.interface_name -e frame.comment 2>/dev/null >fields.tsv
# Expected: a packet the labels list is named by its source and commented with its label (the CSV
# row after index and time); every other one is the background's, uncommented.
awk -F'\t' 'NR == FNR { if (FNR > 1) { split($0, f, ","); row = $0; sub(/^[^,]*,[^,]*,/, "", row); src[f[1]] = f[3]; label[f[1]] = row } next }
  { i = FNR - 1; want = (i in src) ? src[i] "\t" label[i] : "bg\t"
    if ($0 != want) { print "packet " i ": got [" $0 "], expected [" want "]"; bad++ } }
  END { exit bad > 0 }' labels.csv fields.tsv >mismatch.txt
if [[ -s fields.tsv ]] && [[ ! -s mismatch.txt ]]; then pass; else fail "interface names and comments against the labels" "$(head -5 mismatch.txt)"; fi
if (($(grep -c . labels.csv) == 1 + $(grep -c -P '\t.' fields.tsv))); then pass; else fail "as many comments as labels"; fi
# comments=true needs pcapng.
if "$veipipe" check -e "pcap(bg.pcap) -> file(x.pcap, comments=true)" 2>err.txt; then fail "comments=true on a pcap accepted"
elif grep -q "comments need a pcapng output" err.txt; then pass; else fail "comments=true on a pcap: message" "$(cat err.txt)"; fi

# Mixed link types against mergecap.
eth=$corpus/joincap-ok.pcap wifi=$corpus/libpcap-wpa2linkuppassphraseiswireshark.pcap sll=$corpus/tcpdump-tcp-handshake-nano.pcap
"$veipipe" run -q -e "pcap($eth) -> m: merge(end=all) -> file(mixed.pcapng, precision=ns); pcap($wifi) -> m; pcap($sll) -> m" 2>mixed.err ||
  fail "mixed link types into pcapng" "$(cat mixed.err)"
mergecap -F pcapng -w peer.pcapng "$eth" "$wifi" "$sll"
dump() { tshark -r "$1" -T json -x 2>/dev/null; }
if python3 - <(dump mixed.pcapng) <(dump peer.pcapng) >mixed.txt <<'EOF'; then pass; else fail "mixed link types: veipipe against mergecap" "$(head -5 mixed.txt)"; fi
import collections, json, sys
def records(path):
    out = []
    for p in json.load(open(path)):
        layers = p["_source"]["layers"]
        frame = layers["frame"]
        out.append((frame["frame.time_epoch"], frame["frame.encap_type"], layers["frame_raw"][0]))
    return out
ours, peer = records(sys.argv[1]), records(sys.argv[2])
rank = {"1": 0, "23": 1, "25": 2}  # Wireshark's encapsulations of the three inputs, in their order
ordered = sorted(ours, key=lambda r: (r[0], rank[r[1]]))
print(f"{len(ours)} records, mergecap {len(peer)}; link types {sorted(collections.Counter(r[1] for r in ours).items())}")
sys.exit(0 if collections.Counter(ours) == collections.Counter(peer) and ours == ordered and len(ours) == 870 else 1)
EOF

# With a pcap output, the refusal names the pcapng way.
"$veipipe" check -e "pcap($eth) -> m: merge -> file(mixed.pcap); pcap($wifi) -> m" 2>refused.txt
if grep -q 'write pcapng (`file(out.pcapng)`)' refused.txt; then pass; else fail "pcap output of two link types: note" "$(cat refused.txt)"; fi
# A transform after a merge of several link types reads one: refused.
"$veipipe" check -e "pcap($eth) -> m: merge -> snaplen(64) -> file(mixed.pcapng); pcap($wifi) -> m" 2>transform.txt
if grep -q "would see packets of 2 link types" transform.txt; then pass; else fail "transform after a mixed merge" "$(cat transform.txt)"; fi

# Interfaces described after the first packet: three captures as the sections of one pcapng (cat
# of their pcapng forms). Into pcapng, each later section's interface gets its IDB when first used,
# and every record keeps its link type, as tshark reads the input; into pcap, the source ends at the
# second section's interface with a note naming pcapng, its first section kept (exit 3: damage).
part=0
for f in "$eth" "$wifi" "$sll"; do editcap -F pcapng "$f" "part$((++part)).pcapng"; done
cat part1.pcapng part2.pcapng part3.pcapng >sections.pcapng
"$veipipe" run -q -e "pcap(sections.pcapng, disorder=keep) -> file(late.pcapng)" 2>late.err || fail "late interfaces into pcapng" "$(cat late.err)"
fields() { tshark -r "$1" -T fields -e frame.time_epoch -e frame.encap_type -e frame.len 2>/dev/null; }
if cmp -s <(fields late.pcapng) <(fields sections.pcapng) &&
  [[ $(tshark -r late.pcapng -T fields -e frame.interface_name 2>/dev/null | sort | uniq -c | xargs) == "851 sections 16 sections#1 3 sections#2" ]]
then pass; else fail "late interfaces into pcapng: records and interface names as tshark reads the input" "$(tshark -r late.pcapng -T fields -e frame.interface_name | sort | uniq -c)"; fi
"$veipipe" run -q -e "pcap(sections.pcapng) -> file(late.pcap)" 2>late-pcap.err
rc=$?
if ((rc == 3)) && [[ $(count_capinfos late.pcap) == 851 ]] &&
  grep -q 'block 854 (record 851) at byte offset 557908: an interface of link type IEEE802_11_RADIO (127) described after the first packet.*write pcapng' late-pcap.err
then pass; else fail "late interface of another link type into pcap: exit 3, 851 kept, a note naming pcapng" "rc $rc" "$(cat late-pcap.err)"; fi

# Comments and flags of a pcapng input go to a pcapng output: editcap's packet comments, and flags
# in a big-endian section (written here: editcap sets none), through a merge with generated
# packets whose own comments are their labels (comments=true).
editcap -a 1:"first packet" -a 3:"third, with a comma" "$eth" commented.pcapng
python3 - <<'PY'
import struct
def block(t, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(">II", t, 12 + len(body)) + body + struct.pack(">I", 12 + len(body))
def opt(code, value):
    return struct.pack(">HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
packet = bytes(range(60))
def epb(ts, options=b""):
    return block(6, struct.pack(">IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, 60, 60) + packet + (options + b"\0" * 4 if options else b""))
with open("flags.pcapng", "wb") as f:
    f.write(block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1)) + block(1, struct.pack(">HHI", 1, 0, 0)))
    f.write(epb(1_700_000_000_000_000, opt(1, b"inbound, FCS 4") + opt(2, struct.pack(">I", 0x81))))
    f.write(epb(1_700_000_000_500_000) + epb(1_700_000_001_000_000, opt(3, b"\x02" + b"\xaa" * 16) + opt(2, struct.pack(">I", 2))))
PY
"$veipipe" run -q -e "pcap(commented.pcapng) -> m: merge -> file(kept.pcapng, comments=true); pcap(flags.pcapng, rebase=first) -> m; icmp(src=10.9.0.1, dst=10.9.0.2, count=3, rate=1000) -> m" 2>kept.err ||
  fail "comments and flags through a merge" "$(cat kept.err)"
carried() { tshark -r "$1" -T fields -e "${3:-frame.comment}" ${2:+-Y "frame.interface_name == \"$2\""} 2>/dev/null; }
# A packet of a source other than the background has its label first, then its own comments.
if cmp -s <(carried kept.pcapng commented) <(carried commented.pcapng) && [[ $(carried commented.pcapng | grep -c .) == 2 ]] &&
  cmp -s <(carried kept.pcapng flags frame.packet_flags) <(carried flags.pcapng "" frame.packet_flags) &&
  [[ $(carried flags.pcapng "" frame.packet_flags | xargs) == "0x00000081 0x00000002" ]] &&
  [[ $(carried kept.pcapng flags | head -1) == "flags,flags.pcapng,0,pcap,,inbound, FCS 4" ]] &&
  [[ $(carried kept.pcapng icmp | grep -c "^icmp,") == 3 ]]
then pass; else fail "comments and flags of pcapng inputs carried, labels on generated packets" "$(carried kept.pcapng | grep . | sort | uniq -c)"; fi

# A full disk (root only: a 1 MiB tmpfs): the pcapng ends on a whole block, its records are the
# input's first ones, and the statistics count exactly those.
if [[ $(id -u) -eq 0 ]] && mkdir full && mount -t tmpfs -o size=1m tmpfs full; then
  "$veigen" -o big.pcap --size 4MiB 2>/dev/null
  timeout 60 "$veipipe" run --stats-json stats.json -e "pcap(big.pcap) -> file(full/out.pcapng)" 2>full.err
  rc=$?
  if ((rc == 1)) && grep -q "full/out.pcapng: No space left on device" full.err; then pass; else fail "pcapng on a full disk: exit 1 naming the path" "rc $rc" "$(cat full.err)"; fi
  kept=$(count_capinfos full/out.pcapng)
  if editcap -F pcap full/out.pcapng back.pcap 2>/dev/null && ((kept > 0)) &&
    cmp -s <(records back.pcap) <(records big.pcap | head -c $(($(stat -c %s back.pcap) - 24))); then pass
  else fail "the cut pcapng holds the input's first records ($kept)"; fi
  if grep -q "\"packets\":$kept," stats.json; then pass; else fail "--stats-json counts the $kept records the pcapng holds" "$(head -c 200 stats.json)"; fi
else
  echo "pcapng_out_test: full-disk case skipped (needs root to mount a small tmpfs)"
fi

summary pcapng_out_test
