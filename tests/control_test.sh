#!/usr/bin/env bash
# The control socket end to end: a background streamed slowly through a pipe, stages injected with
# `veipipe inject`, malformed and abandoned lines answered or dropped without changing anything.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") veigen=$(realpath "$2")
tmp=$(mktemp -d)
trap 'kill "${run_pid:-0}" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
check() { # check WHAT COMMAND...: passes when COMMAND succeeds
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}

timeout 60 "$veigen" -o bg.pcap --count 3000 --rate 1kpps 2>/dev/null
# 3 s of background fed at about its own pace, so that injections land inside it.
cat >feed.py <<'PY'
import sys, time
data = open(sys.argv[1], 'rb').read()
out = sys.stdout.buffer
try:
    for pos in range(0, len(data), 20000):
        out.write(data[pos:pos + 20000]); out.flush(); time.sleep(0.05)
except BrokenPipeError:  # the reader stopped early (the SIGTERM check)
    pass
PY
python3 feed.py bg.pcap | timeout 60 "$veipipe" run --stats-json stats.json \
  -e "pcap(-) -> m: merge -> file(out.pcap, labels=labels.csv); control($tmp/ctl.sock) -> m" 2>run.err &
run_pid=$!
for _ in $(seq 50); do [[ -S ctl.sock ]] && break; sleep 0.05; done

check "socket exists with mode 0600" test "$(stat -c %a ctl.sock 2>/dev/null)" = 600
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmp(dst=10.0.0.9, count=3, rate=100pps)')
check "inject answered ok 3 (got '$reply')" test "$reply" = "ok 3"
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmpp(dst=10.0.0.9)')
check "exit status 1 for a refused line" test $? -eq 1
check "unknown stage answered with an error (got '$reply')" grep -q "^error: .*unknown stage 'icmpp'" <<<"$reply"
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'merge')
check "a non-source stage is refused (got '$reply')" grep -q '^error: inject takes one source stage' <<<"$reply"
# A source followed by transforms: moved to another host and cut, each IPv4 header still valid.
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmp(dst=10.0.0.6, count=4) -> rewrite(dstip="10.0.0.6:10.0.0.66") -> snaplen(40)')
check "a chain of transforms is injected (got '$reply')" test "$reply" = "ok 4"
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmp(dst=10.0.0.5) -> snaplen(0)')
check "a bad transform is answered with its column (got '$reply')" test "$reply" = "error: col 31: snaplen must be 1..4294967295 bytes"
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmp(dst=10.0.0.5) -> file(x.pcap)')
check "a chain that is not transforms is refused (got '$reply')" grep -q '^error: inject takes one source stage, optionally followed by transforms' <<<"$reply"
# Garbage, then a client that disconnects mid-line: the run goes on and nothing is injected.
python3 - "$tmp/ctl.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"\xff\xfe garbage ((\n"); print(s.recv(4096).decode(errors="replace").strip(), file=sys.stderr)
s.close()
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"icmp(dst=10.0.0.7, cou"); s.close()
PY
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmp(dst=10.0.0.8, count=2)')
check "still serving after garbage and a dropped client (got '$reply')" test "$reply" = "ok 2"

wait "$run_pid"
check "the run ends with status 0" test $? -eq 0
check "the socket file is removed at the end" test ! -e ctl.sock
icmp=$(tshark -r out.pcap -Y icmp 2>/dev/null | wc -l)
check "exactly 9 injected ICMP packets written (got $icmp)" test "$icmp" -eq 9
moved=$(tshark -r out.pcap -o ip.check_checksum:TRUE -Y 'ip.dst==10.0.0.66 && ip.checksum.status=="Good" && frame.cap_len==40 && frame.len==98' 2>/dev/null | wc -l)
check "4 packets moved to 10.0.0.66, cut to 40 of 98 bytes, IPv4 checksum good (got $moved)" test "$moved" -eq 4
check "no packet from the abandoned line" test "$(tshark -r out.pcap -Y 'ip.dst==10.0.0.7' 2>/dev/null | wc -l)" -eq 0
check "background complete: 3009 packets" test "$(capinfos -c -M out.pcap | awk '/Number of packets/ {print $NF}')" -eq 3009
check "labels list the 9 control packets" test "$(grep -c ',control,event,' labels.csv)" -eq 9
check "stats count the events" grep -q '"events":9' stats.json
check "time never goes back" bash -c "tshark -r out.pcap -T fields -e frame.time_epoch 2>/dev/null | sort -c -g"
check "tcpdump reads the output" tcpdump -r out.pcap -w /dev/null 2>/dev/null

# SIGTERM mid-run: reading stops, everything merged is written, the file stays a valid capture.
python3 feed.py bg.pcap | timeout 60 "$veipipe" run -q -e "pcap(-) -> file(term.pcap)" 2>term.err &
run_pid=$!
# Some packets written first (a file header alone is 24 bytes): a sanitizer build under load can
# take longer than the feed's first second to get there.
for _ in $(seq 200); do (($(stat -c %s term.pcap 2>/dev/null || echo 0) > 24)) && break; sleep 0.05; done
kill -TERM "$run_pid"
wait "$run_pid"
check "SIGTERM: exit status 143 (got $?)" test $? -eq 143
check "SIGTERM: tcpdump reads the output to its end" tcpdump -r term.pcap -w /dev/null
got=$(capinfos -c -M term.pcap 2>/dev/null | awk '/Number of packets/ {print $NF}')
check "SIGTERM: part of the background was written (got ${got:-none} of 3000)" test "${got:-0}" -gt 0 -a "${got:-0}" -lt 3000

# --timeout: a listener that never accepts (a server busy past its limit) gets its reply no sooner.
python3 - mute.sock <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4); open("mute.ready", "w").close(); time.sleep(30)
PY
mute_pid=$!
for _ in $(seq 100); do [[ -e mute.ready ]] && break; sleep 0.05; done
start=$EPOCHREALTIME
reply=$(timeout 10 "$veipipe" inject --timeout 0.4 mute.sock 'icmp(dst=10.0.0.5)' 2>&1)
status=$?
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
kill "$mute_pid" 2>/dev/null
check "--timeout 0.4: status 1 after 0.4 to 3 s (got $status after $elapsed s)" \
  awk -v s="$status" -v t="$elapsed" 'BEGIN { exit !(s == 1 && t >= 0.4 && t < 3) }'
check "--timeout 0.4: the error names the socket and the wait (got '$reply')" \
  test "$reply" = "veipipe: error: mute.sock: no reply within 400 ms"
reply=$("$veipipe" inject --timeout 0 mute.sock 'icmp(dst=10.0.0.5)' 2>&1)
status=$?
check "--timeout 0 is refused with status 2 (got $status: '$reply')" \
  bash -c '[[ $1 == 2 ]] && grep -q -- "--timeout: seconds from more than 0 to 86400" <<<"$2"' _ "$status" "$reply"

summary control_test
