#!/usr/bin/env bash
# The picture of a run (issue 14, item 7): a corpus background paced at 4x with an icmp and a stream
# placed by at=, and an icmp injected through the control socket. The --stats-json series must sum
# to the statistics' totals, put each placed source in the seconds of its at=, and agree bucket by
# bucket with the output as tshark reads it (the labels saying whose each packet is); then
# `veipipe plot` draws it at the size asked for.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
veipipe=$(realpath "$1") corpus=$(realpath "$2")
tmp=$(mktemp -d)
trap 'kill "${run_pid:-0}" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require plot_test tshark "$(dirname "$veipipe")/veipipe-plot"
check() { # check WHAT COMMAND...: passes when COMMAND succeeds
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}

seq 1 800 >request.txt
seq 1 6000 >response.txt
# joincap-ok: 851 packets over 10.27 s, so 2.6 s at 4x.
timeout 30 "$veipipe" run -q --stats-json stats.json -e "pcap($corpus/joincap-ok.pcap) -> m: merge(end=all) -> pace(4x) -> file(out.pcap, labels=labels.csv)
  icmp(dst=10.0.0.9, at=+2s, count=3) -> m
  stream(request.txt, response=response.txt, at=+5s) -> m
  control($tmp/ctl.sock) -> m" 2>run.err &
run_pid=$!
for _ in $(seq 50); do [[ -S ctl.sock ]] && break; sleep 0.05; done
sleep 0.5
reply=$(timeout 10 "$veipipe" inject "$tmp/ctl.sock" 'icmp(dst=10.0.0.7, count=2, rate=2pps)')
check "control injection answered ok 2 (got '$reply')" test "$reply" = "ok 2"
wait "$run_pid"
check "the run ends with status 0" test $? -eq 0

tshark -r out.pcap -T fields -e frame.time_epoch -e frame.cap_len >frames.tsv 2>/dev/null
python3 - stats.json labels.csv frames.tsv >series.out 2>&1 <<'PY'
import csv, json, sys
from decimal import Decimal
run = json.load(open(sys.argv[1]))
series = run["series"]
start, width = series["start_ns"], series["bucket_ns"]
by_name = {s["name"]: s for s in series["sources"]}
def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
say(width == 1_000_000_000, f"buckets of 1 s (got {width} ns)")
say([s["rank"] for s in series["sources"]] == list(range(len(series["sources"]))), "a column per rank, in rank order")
say(len({len(s["packets"]) for s in series["sources"]} | {len(s["bytes"]) for s in series["sources"]}) == 1,
    "every column as long")
# Timeline sources: their columns sum to the statistics' per-source totals; events to `events`.
for rank, src in enumerate(run["sources"]):
    col = series["sources"][rank]
    say(sum(col["packets"]) == src["packets"] and sum(col["bytes"]) == src["bytes"],
        f"rank {rank} sums to {src['packets']} packets, {src['bytes']} bytes "
        f"(got {sum(col['packets'])}, {sum(col['bytes'])})")
events = series["sources"][len(run["sources"]):]
say(sum(sum(s["packets"]) for s in events) == run["events"] == 2, f"event columns sum to events ({run['events']})")
say(sum(sum(s["packets"]) for s in series["sources"]) == run["packets"], f"all columns sum to {run['packets']} written")
# at=+2s, 1 pps: one request in each of seconds 2, 3, 4; the stream's connection within second 5.
nonzero = lambda name: {k: n for k, n in enumerate(by_name[name]["packets"]) if n}
say(nonzero("icmp") == {2: 1, 3: 1, 4: 1}, f"icmp at=+2s in seconds 2, 3, 4 (got {nonzero('icmp')})")
say(list(nonzero("request")) == [5], f"stream at=+5s in second 5 (got {nonzero('request')})")
# The control injection: listed, dated, and its two packets (0.5 s apart) from its second on.
inj = run["injections"]
say(len(inj) == 1 and inj[0]["source"] == "control" and inj[0]["stage"] == "icmp" and inj[0]["packets"] == 2
    and inj[0]["ts_ns"] is not None, f"one control icmp injection of 2 listed (got {inj})")
if inj and inj[0]["ts_ns"] is not None:
    first = (inj[0]["ts_ns"] - start) // width
    got = nonzero("control")
    say(min(got) == first and sum(got.values()) == 2, f"control packets from second {first} (got {got})")
# Independently: tshark's times and lengths, each packet given to its labelled source (else the
# background), bucketed from the first packet.
owner = {int(row["index"]): row["source"] for row in csv.DictReader(open(sys.argv[2]))}
counted = {}
frames = [line.split("\t") for line in open(sys.argv[3]).read().split("\n") if line]
t0 = int(Decimal(frames[0][0]) * 10**9)
say(t0 == start, f"the series starts at the first packet ({t0}, got {start})")
for index, (epoch, caplen) in enumerate(frames):
    bucket = (int(Decimal(epoch) * 10**9) - t0) // width
    cell = counted.setdefault(owner.get(index, series["sources"][0]["name"]), {}).setdefault(bucket, [0, 0])
    cell[0] += 1
    cell[1] += int(caplen)
for name, col in by_name.items():
    mine = {k: [p, b] for k, (p, b) in enumerate(zip(col["packets"], col["bytes"])) if p}
    say(mine == counted.get(name, {}), f"{name}: every bucket as tshark counts it")
PY
while read -r verdict what; do
  if [[ $verdict == ok ]]; then pass; else fail "$verdict $what"; fi
done <series.out
check "the series check ran to its end" grep -q "every bucket as tshark counts it" series.out

"$veipipe" plot stats.json run.png 2>plot.err
check "veipipe plot exits 0" test $? -eq 0
size=$(python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read(24)
print("%dx%d" % struct.unpack(">II", data[16:24]) if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" else "not a PNG")' run.png)
check "a 1200x600 PNG (got $size)" test "$size" = 1200x600
"$veipipe" plot missing.json none.png 2>missing.err
check "a missing file is an error naming it" bash -c '[[ $0 -ne 0 ]] && grep -q "missing.json" missing.err && [[ ! -e none.png ]]' $?

summary plot_test
