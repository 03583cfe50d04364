#!/usr/bin/env bash
# Signals mid-run (issue 5): SIGINT or SIGTERM stops reading, writes everything already merged,
# leaves a pcap that tcpdump reads to its end, prints the stats and exits 130 / 143; a second
# SIGINT exits at once and the file still ends on a whole record.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require signal_test tcpdump
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { tcpdump -r "$1" -n 2>/dev/null | wc -l; }
# The records of a capture, without its header: an output is a prefix of its input's records.
records() { tail -c +25 "$1"; }

"$veigen" -o "$tmp/10s.pcap" --count 10000 --rate 1kpps --mix 64 2>/dev/null

# interrupt SIGNAL STATUS: a real-time replay (10 s) signalled after 0.5 s.
interrupt() {
  local out="$tmp/$1.pcap"
  "$veipipe" run -e "pcap($tmp/10s.pcap) -> pace(realtime) -> file($out)" 2>"$tmp/$1.err" &
  local pid=$!
  sleep 0.5
  kill "-$1" "$pid"
  wait "$pid"
  local rc=$? n
  n=$(count "$out")
  echo "signal_test: SIG$1 after 0.5 s: exit $rc, $n packets written"
  if ((rc == $2)); then pass; else fail "SIG$1: exit $2" "got $rc: $(cat "$tmp/$1.err")"; fi
  if tcpdump -r "$out" -w /dev/null 2>/dev/null; then pass; else fail "SIG$1: tcpdump reads the output to its end"; fi
  # Stopped reading, wrote what was merged: the whole 10 s trace fits one batch, so all of it.
  if ((n == 10000)); then pass; else fail "SIG$1: every merged packet written" "got $n"; fi
  if cmp -s <(records "$out") <(records "$tmp/10s.pcap"); then pass; else fail "SIG$1: the output's records are the input's"; fi
  if grep -q "^veipipe: $n packets" "$tmp/$1.err"; then pass; else fail "SIG$1: the stats are printed" "$(cat "$tmp/$1.err")"; fi
}
interrupt INT 130
interrupt TERM 143

# A background larger than what is in flight: reading stops early, the output is a prefix.
"$veigen" -o "$tmp/big.pcap" --size 64MiB --rate 10kpps 2>/dev/null
"$veipipe" run -q -e "pcap($tmp/big.pcap) -> pace(realtime) -> file($tmp/prefix.pcap)" &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"
rc=$?
size=$(stat -c %s "$tmp/prefix.pcap")
if ((rc == 130)) && tcpdump -r "$tmp/prefix.pcap" -w /dev/null 2>/dev/null; then pass; else fail "SIGINT on a large replay: 130, readable" "rc $rc"; fi
if ((size < $(stat -c %s "$tmp/big.pcap"))) && cmp -s <(records "$tmp/prefix.pcap") <(records "$tmp/big.pcap" | head -c $((size - 24))); then pass
else fail "SIGINT on a large replay: a strict prefix of the input's records"; fi

# Two SIGINTs: the second exits at once, and the file still ends on a whole record.
"$veigen" -o "$tmp/1g.pcap" --size 512MiB 2>/dev/null
for attempt in 1 2 3; do
  "$veipipe" run -q -e "pcap($tmp/1g.pcap) -> m: merge -> file($tmp/twice.pcap); pcap($tmp/1g.pcap, shift=1us) -> m" &
  pid=$!
  sleep 0.3
  kill -INT "$pid"
  kill -INT "$pid"
  start=$(date +%s%N)
  wait "$pid"
  rc=$? took=$((($(date +%s%N) - start) / 1000000))
  echo "signal_test: two SIGINTs (attempt $attempt): exit $rc after $took ms, $(stat -c %s "$tmp/twice.pcap") bytes"
  if ((rc == 130)) && ((took < 1000)); then pass; else fail "two SIGINTs: exit 130 at once" "rc $rc after $took ms"; fi
  if tcpdump -r "$tmp/twice.pcap" -w /dev/null 2>/dev/null; then pass; else fail "two SIGINTs: the file ends on a whole record"; fi
done
summary signal_test
