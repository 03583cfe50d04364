#!/usr/bin/env bash
# Resource limits (issue 5): inputs built to exhaust memory get a clear error, or run in bounded
# memory. Peak RSS is read with /usr/bin/time.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require limits_test tcpdump /usr/bin/time python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# run_measured NAME DESCRIPTION-FILE: runs it; sets rc and rss (KiB).
run_measured() {
  /usr/bin/time -f "%M" -o "$tmp/$1.rss" "$veipipe" run -q "$2" 2>"$tmp/$1.err"
  rc=$?
  rss=$(tail -1 "$tmp/$1.rss")
  echo "limits_test: $1: exit $rc, peak RSS $((rss / 1024)) MiB"
}

# 1,000 sources: every packet merged in order, memory bounded (arenas shrink as sources multiply).
"$veigen" -o "$tmp/s.pcap" --count 200 2>/dev/null
python3 - "$tmp" >"$tmp/many.vei" <<'PY'
import sys
tmp = sys.argv[1]
print(f"pcap({tmp}/s.pcap) -> m: merge(end=all) -> file({tmp}/many.pcap)")
for i in range(1, 1000):
    print(f"pcap({tmp}/s.pcap, shift={i}us) -> m")
PY
# AddressSanitizer keeps freed memory in a quarantine (256 MiB by default) that counts in the RSS:
# the bar is about veipipe's own memory, so a sanitized build keeps a small one (others ignore this).
ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=16" run_measured "1000 sources" "$tmp/many.vei"
if ((rc == 0)); then pass; else fail "1000 sources: exit 0" "$(head -5 "$tmp/1000 sources.err")"; fi
if [[ $(tcpdump -r "$tmp/many.pcap" -n 2>/dev/null | wc -l) == 200000 ]]; then pass; else fail "1000 sources: 200,000 packets"; fi
if tcpdump -r "$tmp/many.pcap" -tt -n 2>/dev/null | awk '{ if ($1 < last) exit 1; last = $1 }'; then pass; else fail "1000 sources: in time order"; fi
if ((rss < 256 * 1024)); then pass; else fail "1000 sources: peak RSS under 256 MiB" "$((rss / 1024)) MiB"; fi
summary limits_test
