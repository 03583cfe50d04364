#!/usr/bin/env bash
# Compressed captures (core/decompress.h): gzip and zstd copies, made here with Debian's gzip and
# zstd, of corpus captures (classic pcap and pcapng) give the plain capture's output byte for byte,
# from a file and from standard input; concatenated gzip members and zstd frames read as gzip -d
# and zstd -d read them; a truncated copy keeps what `gzip -dc | tcpdump -r -` keeps and names the
# compressed file's byte offset; a compressed source merges beside a plain one; `count=` stops early.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") corpus=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require compress_test gzip zstd tcpdump python3 cmp timeout "$veipipe"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { timeout 60 "$veipipe" run -q -e "$1" 2>"$tmp/err"; }
# same NAME DESCRIPTION-WITH-@IN@ PLAIN COMPRESSED: the description gives the same bytes with either
# input; disorder=keep in descriptions so that the records are the file's own.
same() {
  local what=$1 description=$2 plain=$3 packed=$4
  if run "${description//@IN@/$plain}" && mv "$tmp/out.pcap" "$tmp/plain.pcap" && run "${description//@IN@/$packed}" &&
    cmp -s "$tmp/plain.pcap" "$tmp/out.pcap"; then pass
  else fail "$what" "$(cat "$tmp/err")"; fi
}

for name in joincap-ok.pcap tcpdump-bgp-role.pcapng zeek-echo-connections.pcap; do
  plain=$corpus/$name
  gzip -c "$plain" >"$tmp/$name.gz"
  zstd -q -c "$plain" >"$tmp/$name.zst"
  for packed in "$tmp/$name.gz" "$tmp/$name.zst"; do
    same "$(basename "$packed") reads as $name" "pcap(@IN@, disorder=keep) -> file($tmp/out.pcap)" "$plain" "$packed"
  done
  if timeout 60 "$veipipe" run -q -e "pcap(-, disorder=keep) -> file($tmp/out.pcap)" <"$tmp/$name.gz" 2>"$tmp/err" &&
    cmp -s "$tmp/plain.pcap" "$tmp/out.pcap"; then pass
  else fail "$name.gz on standard input reads as $name" "$(cat "$tmp/err")"; fi
done

# Concatenated members and frames, cut at byte offsets that are no record boundary.
plain=$corpus/zeek-echo-connections.pcap
head -c 1000000 "$plain" >"$tmp/part1"
tail -c +1000001 "$plain" | head -c 3000000 >"$tmp/part2"
tail -c +4000001 "$plain" >"$tmp/part3"
for tool in gzip zstd; do
  for part in 1 2 3; do $tool -q -c "$tmp/part$part"; done >"$tmp/concat.$tool"
  same "three concatenated ${tool} streams read as one" "pcap(@IN@, disorder=keep) -> file($tmp/out.pcap)" \
    "$plain" "$tmp/concat.$tool"
done

# Records of zeros compress 200:1 and more: one read of compressed bytes makes many chunks of plain
# ones, and the last of them must still come out when the input has ended.
python3 -c "
import struct, sys
out = sys.stdout.buffer
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
for i in range(20000):
    out.write(struct.pack('<IIII', 1700000000 + i // 1000, i % 1000 * 1000, 1500, 1500) + bytes(1500))
" >"$tmp/zeros.pcap"
for tool in gzip zstd; do
  $tool -q -c "$tmp/zeros.pcap" >"$tmp/zeros.$tool"
  same "a capture of zeros through $tool" "pcap(@IN@) -> file($tmp/out.pcap)" "$tmp/zeros.pcap" "$tmp/zeros.$tool"
done

# A compressed source in a merge beside a plain one, each in either role.
same "a .zst source merges beside a plain background" \
  "pcap($corpus/joincap-ok.pcap) -> m: merge(end=all) -> file($tmp/out.pcap); pcap(@IN@) -> m" \
  "$plain" "$tmp/zeek-echo-connections.pcap.zst"
same "a .gz background merges with a plain source" \
  "pcap(@IN@) -> m: merge(end=all) -> file($tmp/out.pcap); pcap($corpus/joincap-ok.pcap) -> m" \
  "$plain" "$tmp/zeek-echo-connections.pcap.gz"

# count= stops reading early: the pump is stopped and joined, the run ends at once.
if run "pcap($tmp/zeek-echo-connections.pcap.gz, count=5) -> file($tmp/out.pcap)" &&
  [[ $(tcpdump -r "$tmp/out.pcap" 2>/dev/null | wc -l) == 5 ]]; then pass
else fail "count=5 of a .gz gives 5 packets" "$(cat "$tmp/err")"; fi

# Truncated: the records that `gzip -dc | tcpdump -r -` (zstd -dc) keeps, the compressed offset named, exit 3.
for tool in gzip zstd; do
  ext=${tool/gzip/gz}
  ext=${ext/zstd/zst}
  head -c 1000000 "$tmp/zeek-echo-connections.pcap.$ext" >"$tmp/cut.$ext"
  $tool -dc "$tmp/cut.$ext" 2>/dev/null | tcpdump -r - -w "$tmp/tcpdump.pcap" 2>/dev/null
  run "pcap($tmp/cut.$ext, disorder=keep) -> file($tmp/out.pcap)"
  status=$?
  if [[ $status == 3 ]] && cmp -s <(records "$tmp/out.pcap") <(records "$tmp/tcpdump.pcap") &&
    grep -q "cut.$ext: truncated: the compressed file ends at byte offset 1000000, inside the $tool" "$tmp/err"; then pass
  else fail "a truncated .$ext keeps what $tool -dc | tcpdump keeps (status $status)" "$(cat "$tmp/err")"; fi
done

summary compress_test
