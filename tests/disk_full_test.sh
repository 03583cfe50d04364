#!/usr/bin/env bash
# A full disk: a clear "No space left on device" naming the path, exit status 1, and an output that
# still ends on a whole record; the statistics (human and --stats-json) count the records the file
# holds. The same for a labels file on a full disk: the message names the labels path. Needs root
# for the small tmpfs; skipped (and counted so) without it.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
tmp=$(mktemp -d)
trap 'for m in "$tmp/full" "$tmp/small"; do mountpoint -q "$m" && umount "$m"; done; rm -rf "$tmp"' EXIT
if [[ $(id -u) -ne 0 ]] || ! mkdir "$tmp/full" "$tmp/small" || ! mount -t tmpfs -o size=1m tmpfs "$tmp/full" ||
  ! mount -t tmpfs -o size=64k tmpfs "$tmp/small"; then
  echo "disk_full_test: skipped (needs root to mount a small tmpfs)"
  summary disk_full_test
  exit
fi
timeout 60 "$veigen" -o "$tmp/in.pcap" --size 8MiB 2>/dev/null
timeout 60 "$veipipe" run --stats-json "$tmp/stats.json" -e "pcap($tmp/in.pcap) -> file($tmp/full/out.pcap)" 2>"$tmp/err"
rc=$?
if ((rc == 1)); then pass; else fail "exit status 1 on a full disk" "got $rc"; fi
if grep -q "$tmp/full/out.pcap: No space left on device" "$tmp/err"; then pass; else fail "message names the path" "$(cat "$tmp/err")"; fi
if tcpdump -r "$tmp/full/out.pcap" -w /dev/null 2>/dev/null; then pass; else fail "tcpdump reads the cut output"; fi
# The kept part is the input's first records, byte for byte.
size=$(stat -c %s "$tmp/full/out.pcap")
if cmp -s <(tail -c +25 "$tmp/full/out.pcap") <(tail -c +25 "$tmp/in.pcap" | head -c $((size - 24))); then pass
else fail "the output is a prefix of the input's records"; fi
# What the statistics say was written is what the file holds (it used to say 0 packets).
records=$(tcpdump -nn -r "$tmp/full/out.pcap" 2>/dev/null | wc -l)
if ((records > 0)); then pass; else fail "the cut output holds records" "$records"; fi
if grep -q "\"packets\":$records,\"bytes\":$((size - 24))," "$tmp/stats.json"; then pass
else fail "--stats-json counts the $records records and $((size - 24)) bytes in the file" "$(head -c 200 "$tmp/stats.json")"; fi
if grep -q "^veipipe: $records packets, $((size - 24)) bytes written" "$tmp/err"; then pass
else fail "the human statistics count the $records records in the file" "$(cat "$tmp/err")"; fi

# Labels on a full disk: the error names the labels path; every packet the capture holds is counted.
"$veigen" -o "$tmp/bg.pcap" --count 10 --rate 10pps --seed 1 2>/dev/null
timeout 60 "$veipipe" run -q --stats-json "$tmp/stats2.json" -e "pcap($tmp/bg.pcap) -> m: merge(end=all) -> \
  file($tmp/out2.pcap, labels=$tmp/small/labels.csv); pcap($tmp/in.pcap) -> m" 2>"$tmp/err2"
rc=$?
if ((rc == 1)); then pass; else fail "exit status 1 on a full labels disk" "got $rc"; fi
if grep -q "labels $tmp/small/labels.csv: No space left on device" "$tmp/err2"; then pass
else fail "the message names the labels path" "$(cat "$tmp/err2")"; fi
# The labels keep whole lines only, each naming a packet of the capture.
if [[ -s $tmp/small/labels.csv && $(tail -c 1 "$tmp/small/labels.csv" | od -An -c | tr -d ' ') == '\n' ]] &&
  awk -F, 'NF != 7 { bad = 1 } END { exit bad }' "$tmp/small/labels.csv"; then pass
else fail "the labels end on a whole line" "$(tail -c 100 "$tmp/small/labels.csv")"; fi
records=$(tcpdump -nn -r "$tmp/out2.pcap" 2>/dev/null | wc -l)
if ((records > 10)) && grep -q "\"packets\":$records," "$tmp/stats2.json"; then pass
else fail "--stats-json counts the $records records in the capture" "$(head -c 200 "$tmp/stats2.json")"; fi
summary disk_full_test
