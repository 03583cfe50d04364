#!/usr/bin/env bash
# Builds veipipe, generates a sample background and an "attack" trace, and weaves into the
# background the attack 2 s after its start (its 192.168/16 hosts moved to 10.66/16, checksums
# kept valid) and ten ICMP probes from 1 s on, writing the ground truth beside the output and
# printing the run's statistics.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/build.sh"
build=${VEIPIPE_BUILD_DIR:-$here/build}
out=$here/out
mkdir -p "$out"
"$build/veigen" -o "$out/background.pcap" --size 64MiB --rate 50kpps --seed 1
"$build/veigen" -o "$out/attack.pcap" --count 1000 --mix 64 --rate 1kpps --seed 2 --start 1500000000
"$build/veipipe" run -e "
  pcap($out/background.pcap) -> m: merge -> file($out/woven.pcap, labels=$out/woven.csv)
  attack: pcap($out/attack.pcap, at=+2s) -> rewrite(ip=\"192.168.0.0/16:10.66.0.0/16\") -> m
  probes: icmp(src=10.9.9.9, dst=10.0.0.1, rate=10pps, count=10, at=+1s) -> m"
echo "demo: wrote $out/woven.pcap and its ground truth $out/woven.csv ($(($(wc -l <"$out/woven.csv") - 1)) injected packets)"
