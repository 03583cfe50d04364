#!/usr/bin/env bash
# The Python module (python/, README.md section Python): pip installs it from the source tree into a
# virtual environment (Debian's setuptools, nothing from PyPI to build), a description with a $NAME
# given by `defines=` runs on a corpus capture, and Python threads inject a Scapy-built frame and a
# stage, one before the run and one while a paced run goes. tshark finds the frame's bytes at the
# time asked for, and the stats dict's counts are capinfos' counts of the input and the output.
#   python_test.sh BUILD-DIR CORPUS  (BUILD-DIR configured with -DVEIPIPE_PYTHON=ON: setup.py reuses it)
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
build=$(realpath "$1") corpus=$(realpath "$2")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
python=${PYTHON:-/usr/bin/python3}  # Debian's: its setuptools builds the module
require python_test "$python" tshark capinfos timeout
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

"$python" -m venv --system-site-packages venv || { echo "python_test: cannot make a venv (python3-venv)" >&2; exit 1; }
if ! VEIPIPE_BUILD_DIR=$build timeout 300 venv/bin/pip install -q --no-build-isolation --no-index "$tests_dir/../python" \
  >pip.log 2>&1; then
  cat pip.log >&2
  echo "python_test: pip could not install the module from the source tree" >&2
  exit 1
fi
# Scapy is a Python-side peer: Debian's python3-scapy (scripts/setup.sh), else from PyPI.
if ! venv/bin/python -c 'import scapy' 2>/dev/null && ! timeout 120 venv/bin/pip install -q scapy >/dev/null 2>&1; then
  echo "python_test: no scapy (neither python3-scapy nor PyPI): skipped" >&2
  exit 77
fi

bg=$corpus/tcpdump-pptp.pcap
first=$(capinfos -T -r -S -a "$bg" | cut -f2)  # its first packet's time, seconds.micro
cat >weave.vei <<'VEI'
define(out out.pcap)
pcap($bg) -> file($out)
VEI
cat >run.py <<'PY'
import json, sys, threading, veipipe
from scapy.all import Ether, IP, UDP, Raw

bg, first = sys.argv[1], sys.argv[2]
seconds, micro = first.split(".")
at_ns = int(seconds) * 10**9 + int(micro.ljust(9, "0")) + 500_000_000
frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.9.9.1", dst="10.9.9.2") / \
    UDP(sport=1234, dport=4321) / Raw(b"woven from python")
accepted = []
def inject(what, **kw):
    accepted.append(engine.inject(what, **kw))

# Before the run: the frame at first + 500 ms, the stage at first + 700 ms, each from its own thread.
engine = veipipe.Engine(open("weave.vei").read(), where="weave.vei", defines={"bg": bg})
threads = [threading.Thread(target=inject, args=(frame,), kwargs={"at_ns": at_ns}),
           threading.Thread(target=inject, args=("icmp(dst=10.0.0.9, count=1, at=+700ms)",))]
for t in threads: t.start()
for t in threads: t.join()
engine.start()
status = engine.wait()
json.dump({"status": status, "accepted": accepted, "frame": bytes(frame).hex(), "stats": engine.stats()},
          open("result.json", "w"))

# While a paced run goes (the capture lasts 1.2 s): a frame at now, from a thread, as bytes().
paced = veipipe.Engine(f"pcap({bg}) -> pace(realtime) -> file(paced.pcap)", quiet=True)
paced.start()
t = threading.Thread(target=paced.inject, args=(bytes(frame),))
t.start(); t.join()
print(json.dumps({"status": paced.wait(), "events": paced.stats()["events"]}))

try:
    veipipe.Engine("pcap($bg) -> file(o.pcap)")
except veipipe.DescriptionError as e:
    print(str(e).splitlines()[0])
# A number is no frame (bytes(5) would be five zeros); an empty frame is refused.
unstarted = veipipe.Engine(f"pcap({bg}) -> file(unused.pcap)")
for bad in (5, b""):
    try:
        unstarted.inject(bad)
    except (TypeError, veipipe.InjectError) as e:
        print(type(e).__name__)
PY
if timeout 60 venv/bin/python run.py "$bg" "$first" >run.out 2>run.err; then pass
else fail "run.py" "$(cat run.err)"; fi

field() { venv/bin/python -c "import json,sys; r=json.load(open('result.json')); print(eval(sys.argv[1]))" "$1"; }
[[ $(field 'r["status"]') == 0 && $(field 'sorted(r["accepted"])') == "[1, 1]" ]] && pass ||
  fail "status 0, both injections accepted" "$(cat result.json)"

# The frame: once, at the time asked for, with Scapy's bytes.
tshark -r out.pcap -Y 'udp.dstport == 4321' -T json -x >frame.json 2>/dev/null
read -r count time raw < <("$python" -c '
import json; f = json.load(open("frame.json"))
print(len(f), f[0]["_source"]["layers"]["frame"]["frame.time_epoch"] if f else "-", f[0]["_source"]["layers"]["frame_raw"][0] if f else "-")')
expected_time=$("$python" -c "print(f'{float(\"$first\") + 0.5:.6f}')")
[[ $count == 1 ]] && pass || fail "one UDP frame to port 4321 in out.pcap, found $count"
[[ ${time%000} == "$expected_time" ]] && pass || fail "the frame at $expected_time (first + 500 ms), tshark says $time"
[[ $raw == "$(field 'r["frame"]')" ]] && pass || fail "the frame's bytes are Scapy's" "tshark: $raw" "scapy:  $(field 'r["frame"]')"
# The stage's echo request, 700 ms after the first packet.
icmp=$(tshark -r out.pcap -Y 'icmp.type == 8 && ip.dst == 10.0.0.9' -T fields -e frame.time_relative 2>/dev/null)
[[ $icmp == 0.700000000 ]] && pass || fail "the injected echo request at +0.7 s, tshark says '$icmp'"

# The stats dict against capinfos: the input's packets, the output's packets, the two events.
input=$(capinfos -T -r -c -M "$bg" | cut -f2)
output=$(capinfos -T -r -c -M out.pcap | cut -f2)
[[ $(field 'r["stats"]["sources"][0]["packets"]') == "$input" ]] && pass ||
  fail "stats sources[0].packets is capinfos' $input" "$(field 'r["stats"]')"
[[ $(field 'r["stats"]["packets"]') == "$output" && $output == $((input + 2)) ]] && pass ||
  fail "stats packets is capinfos' $output = $input + 2" "$(field 'r["stats"]')"
[[ $(field 'r["stats"]["events"]') == 2 && $(field 'r["stats"]["accepted_events"]') == 2 ]] && pass ||
  fail "stats events 2" "$(field 'r["stats"]')"

# The paced run: the frame injected at now is in its output, once.
[[ $(sed -n 1p run.out) == '{"status": 0, "events": 1}' ]] && pass || fail "paced run: status 0, 1 event" "$(cat run.out)"
paced=$(tshark -r paced.pcap -Y 'udp.dstport == 4321 && data.data == "woven from python"' 2>/dev/null | wc -l)
[[ $paced == 1 ]] && pass || fail "paced.pcap holds the injected frame once, found $paced"
# A bad description raises DescriptionError with the caret diagnostics.
[[ $(sed -n 2p run.out) == "<python>:1:6: error: undefined '\$bg'" ]] && pass ||
  fail "an undefined \$bg raises DescriptionError" "$(cat run.out)"
[[ $(sed -n 3,4p run.out | tr '\n' ' ') == "TypeError InjectError " ]] && pass ||
  fail "inject(5) raises TypeError, inject(b'') InjectError" "$(cat run.out)"

summary python_test
