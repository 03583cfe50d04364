#!/usr/bin/env bash
# The control socket under a burst (issue 10 item 9): 500 `veipipe inject` clients started at once
# while 5 silent clients hold connections open in the middle of a line. Past the server's 64
# connections the rest wait in the listen backlog; the silent ones are cut after the line timeout.
# Every client must get `ok 1` and every packet must reach the output.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2")
tmp=$(mktemp -d)
trap 'kill "${run_pid:-0}" "${silent_pid:-0}" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require control_burst_test python3 tcpdump capinfos flock
check() { # check WHAT COMMAND...: passes when COMMAND succeeds
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}
# VEIPIPE_BURST_CLIENTS: fewer clients where each is slow to start (scripts/test.sh's ASan stage);
# any number above the server's 64 connections fills the listen backlog.
clients=${VEIPIPE_BURST_CLIENTS:-500} silent=5

# The background (3 MB) is streamed through a pipe at 80 KB/s until the file `burst.over` appears,
# then all at once, and the pipe is held open until that file appears: the run lasts as long as the
# burst needs, which a sanitizer build stretches several times over (an ASan client alone takes
# 0.2 s to start, 500 of them over a minute on 2 cores), and at most about 4 minutes.
timeout 60 "$veigen" -o bg.pcap --count 8000 --rate 1kpps 2>/dev/null
bg_packets=$(capinfos -c -M bg.pcap | awk '/Number of packets/ {print $NF}')
bg_icmp=$(tcpdump -nn -r bg.pcap icmp 2>/dev/null | wc -l)
cat >feed.py <<'PY'
import os, sys, time
data = open(sys.argv[1], 'rb').read()
out = sys.stdout.buffer
for pos in range(0, len(data), 4096):
    out.write(data[pos:pos + 4096]); out.flush()
    if not os.path.exists("burst.over"): time.sleep(0.05)
deadline = time.monotonic() + 240
while not os.path.exists("burst.over") and time.monotonic() < deadline: time.sleep(0.05)
PY
python3 feed.py bg.pcap | timeout 300 "$veipipe" run -q --stats-json stats.json \
  -e "pcap(-) -> m: merge -> file(out.pcap); control($tmp/ctl.sock) -> m" 2>run.err &
run_pid=$!
for _ in $(seq 100); do [[ -S ctl.sock ]] && break; sleep 0.05; done
check "the control socket exists" test -S ctl.sock

# Silent clients: each sends the start of a line and waits, recording what the server does and when.
cat >silent.py <<'PY'
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.sendall(b"icmp(dst=10.0.0.7")
    socks.append(s)
start = time.monotonic()
open('silent.ready', 'w').close()
for s in socks:
    got = b""
    try:
        s.settimeout(max(0.1, start + 20 - time.monotonic()))
        while chunk := s.recv(4096): got += chunk
    except (socket.timeout, ConnectionResetError) as e:
        got += f"<{type(e).__name__}>".encode()
    print(f"{time.monotonic() - start:.1f} {got.decode(errors='replace').strip()}", flush=True)
PY
python3 silent.py "$tmp/ctl.sock" "$silent" >silent.out 2>silent.err &
silent_pid=$!
for _ in $(seq 100); do [[ -e silent.ready ]] && break; sleep 0.05; done
check "the $silent silent clients are connected" test -e silent.ready

# The clients wait at a gate, a lock this shell holds, so that they start together rather than one
# fork at a time (forking 500 takes longer than the server takes to answer one). Releasing the lock
# wakes every waiter at once; a client that comes later finds it free. Their timeout is long
# because 500 processes starting at once share 2 cores: under ASan the last of them is served more
# than a minute after the gate opens, though the server answers each line in a few milliseconds.
# The clients skip ASan's leak check at exit (a third of their start-up and exit under ASan); the
# same client's leaks are checked by control_test.
mkdir replies
exec 4>gate
flock -x 4
pids=()
for i in $(seq "$clients"); do
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" flock -s gate "$veipipe" inject --timeout 240 "$tmp/ctl.sock" 'icmp(dst=10.0.0.9, count=1)' >"replies/$i" 2>&1 4>&- &
  pids+=($!)
done
sleep 1  # most clients are waiting at the gate
start=$EPOCHREALTIME
flock -u 4
for pid in "${pids[@]}"; do wait "$pid"; done
exec 4>&-
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
ok=$(cat replies/* | grep -cx 'ok 1')
echo "control_burst_test: $ok of $clients clients answered 'ok 1' in ${elapsed} s"
check "all $clients clients answered 'ok 1' (got $ok)" test "$ok" -eq "$clients"
if ((ok != clients)); then cat replies/* | grep -vx 'ok 1' | sort | uniq -c | head -5 >&2; fi

wait "$silent_pid"
# Each silent client is told its line was not finished, then closed, about 5 s after it started it.
check "the silent clients were cut after the line timeout" \
  python3 - silent.out "$silent" <<'PY'
import sys
rows = [line.split(' ', 1) for line in open(sys.argv[1]).read().splitlines()]
ok = len(rows) == int(sys.argv[2]) and all(4.0 <= float(t) <= 15.0 and rest.startswith('error: ') for t, rest in rows)
print(f"control_burst_test: silent clients cut after {', '.join(t for t, _ in rows)} s", file=sys.stderr if not ok else sys.stdout)
if not ok: print(open(sys.argv[1]).read(), file=sys.stderr)
sys.exit(0 if ok else 1)
PY

touch burst.over
wait "$run_pid"
status=$?
check "the run ends with status 0 (got $status)" test "$status" -eq 0 || tail -5 run.err >&2
icmp=$(tcpdump -nn -r out.pcap icmp 2>/dev/null | wc -l)
check "all $clients injected ICMP packets written (got $((icmp - bg_icmp)) beside $bg_icmp of the background)" \
  test "$icmp" -eq $((bg_icmp + clients))
check "all of them to 10.0.0.9, none from the silent clients' lines" \
  test "$(tcpdump -nn -r out.pcap 'icmp and dst host 10.0.0.9' 2>/dev/null | wc -l)" -eq "$clients"
total=$(capinfos -c -M out.pcap | awk '/Number of packets/ {print $NF}')
check "background complete: $((bg_packets + clients)) packets (got $total)" test "$total" -eq $((bg_packets + clients))
check "stats count the events" grep -q "\"events\":$clients" stats.json

summary control_burst_test
