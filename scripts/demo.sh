#!/usr/bin/env bash
# Builds veipipe, generates a sample background and an "attack" trace, and weaves the second into
# the first 2 s after its start, printing the run's statistics.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/build.sh"
build=${VEIPIPE_BUILD_DIR:-$here/build}
out=$here/out
mkdir -p "$out"
"$build/veigen" -o "$out/background.pcap" --size 64MiB --rate 50kpps --seed 1
"$build/veigen" -o "$out/attack.pcap" --count 2000 --mix 64 --rate 1kpps --seed 2 --start 1500000000
"$build/veipipe" run -e "
  pcap($out/background.pcap) -> m: merge -> file($out/woven.pcap)
  pcap($out/attack.pcap, at=+2s) -> m"
echo "demo: wrote $out/woven.pcap"
