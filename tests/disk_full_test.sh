#!/usr/bin/env bash
# A full disk: a clear "No space left on device" naming the path, exit status 1, and an output that
# still ends on a whole record. Needs root for the small tmpfs; skipped (and counted so) without it.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
tmp=$(mktemp -d)
trap 'mountpoint -q "$tmp/full" && umount "$tmp/full"; rm -rf "$tmp"' EXIT
if [[ $(id -u) -ne 0 ]] || ! mkdir "$tmp/full" || ! mount -t tmpfs -o size=1m tmpfs "$tmp/full"; then
  echo "disk_full_test: skipped (needs root to mount a small tmpfs)"
  summary disk_full_test
  exit
fi
timeout 60 "$veigen" -o "$tmp/in.pcap" --size 8MiB 2>/dev/null
timeout 60 "$veipipe" run -q -e "pcap($tmp/in.pcap) -> file($tmp/full/out.pcap)" 2>"$tmp/err"
rc=$?
if ((rc == 1)); then pass; else fail "exit status 1 on a full disk" "got $rc"; fi
if grep -q "$tmp/full/out.pcap: No space left on device" "$tmp/err"; then pass; else fail "message names the path" "$(cat "$tmp/err")"; fi
if tcpdump -r "$tmp/full/out.pcap" -w /dev/null 2>/dev/null; then pass; else fail "tcpdump reads the cut output"; fi
# The kept part is the input's first records, byte for byte.
size=$(stat -c %s "$tmp/full/out.pcap")
if cmp -s <(tail -c +25 "$tmp/full/out.pcap") <(tail -c +25 "$tmp/in.pcap" | head -c $((size - 24))); then pass
else fail "the output is a prefix of the input's records"; fi
summary disk_full_test
