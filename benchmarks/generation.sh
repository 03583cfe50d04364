#!/usr/bin/env bash
# Generation speed (issue 12): each conversation stage of the built veipipe writing to /dev/null,
# in packets per second, beside Scapy building the same conversation (benchmarks/scapy_peers.py)
# in the same run; prints a Markdown table. Stages the build does not have are listed as missing.
# Bars: veipipe ≥ 100× Scapy for every stage, and ≥ 1 M packets/s for http.
#
#   benchmarks/generation.sh [--quick] [--build DIR]     (or: benchmarks/run.sh generation)
#
#   --quick      a tenth of the packets, 5 runs instead of 3: a smoke run
#   --build DIR  where the veipipe binary is (default <repo>/build)
#
# veipipe's time is the wall time of the whole `veipipe run` (start-up included) and its packets
# the count --stats-json reports. Scapy's is timed inside Python from the first packet built to the
# end of wrpcap, its import excluded. Both medians of the runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$here/build
quick=0
usage() { sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
# shellcheck source=benchmarks/common.sh
source "$here/benchmarks/common.sh"
while (($#)); do
  take_option "$@"
  ((taken)) || { log "unknown argument '$1'"; usage >&2; exit 2; }
  shift "$taken"
done

veipipe=$build_dir/veipipe
[[ -x $veipipe ]] || die "$veipipe not found: build first (bash scripts/build.sh) or pass --build DIR"
# Debian's interpreter: python3-scapy is installed for it, not for another python3 earlier in PATH.
python=/usr/bin/python3
if ! "$python" -c 'import scapy' 2>/dev/null; then
  log "installing python3-scapy (Debian's; the peer)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-scapy >/dev/null ||
    die "cannot install python3-scapy"
fi

runs=3 vei_packets=1000000 scapy_packets=500
if ((quick)); then runs=5 vei_packets=100000 scapy_packets=100; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 300 /dev/zero | tr '\0' q >"$tmp/request.bin"
head -c 4000 /dev/zero | tr '\0' r >"$tmp/response.bin"

# The stages in the order of the issue, with the parameters each needs beyond count and rate; the
# others run on their defaults. Scapy's builder of the same name gets the same files.
stages=(stream http dns sip smtp ssh tls traceroute synscan icmp)
declare -A args=(
  [stream]="request=$tmp/request.bin, response=$tmp/response.bin"
  [icmp]="dst=10.255.0.2, replies=true"
  [synscan]="ports=1-100"  # not 1-1024: a conversation of ~200 packets keeps Scapy's share of the time short
)
declare -A peer_args=([stream]="$tmp/request.bin $tmp/response.bin")
mapfile -t built < <("$veipipe" stages | awk '{print $1}')

# veipipe_run STAGE COUNT: runs the stage once; prints "PACKETS MICROSECONDS", or fails with the
# description and veipipe's message in $tmp/err.
veipipe_run() {
  local stage=$1 count=$2 t0 t1 description
  description="$stage(${args[$stage]:+${args[$stage]}, }count=$count, rate=10kpps) -> file(/dev/null)"
  t0=$(now_us)
  if ! "$veipipe" run -q --stats-json "$tmp/stats.json" -e "$description" 2>"$tmp/err"; then
    sed -i "1i $description:" "$tmp/err"
    return 1
  fi
  t1=$(now_us)
  echo "$(grep -o '"packets":[0-9]*' "$tmp/stats.json" | head -n 1 | cut -d: -f2) $((t1 - t0))"
}

row " stage " " packets per conversation (veipipe / Scapy) " " veipipe " " Scapy " " ratio " " bar " " result "
row "---" "---:" "---:" "---:" "---:" "---" "---"
for stage in "${stages[@]}"; do
  if ! printf '%s\n' "${built[@]}" | grep -qx "$stage"; then
    row " $stage " " – " " – " " – " " – " " – " " missing from this build "
    continue
  fi
  log "$stage"
  # A stage that lands with a required parameter this script does not know yet is reported, not fatal.
  if ! probe=$(veipipe_run "$stage" 1); then
    log "$(head -n 3 "$tmp/err")"
    row " $stage " " – " " – " " – " " – " " – " " does not run on its defaults: add its parameters to this script "
    continue
  fi
  per_conversation=${probe%% *}
  count=$(((vei_packets + per_conversation - 1) / per_conversation))
  vei_times="" packets=0
  for ((i = 0; i < runs; i++)); do
    timed=$(veipipe_run "$stage" "$count") || die "$(head -n 4 "$tmp/err")"
    packets=${timed%% *}
    vei_times+=" ${timed#* }"
  done
  # shellcheck disable=SC2086 # peer_args is a list of words
  "$python" "$here/benchmarks/scapy_peers.py" "$stage" 1 1 ${peer_args[$stage]:-} >"$tmp/peer"
  peer_per_conversation=$(awk '$1 == "conversation" {print $2}' "$tmp/peer")
  peer_count=$(((scapy_packets + peer_per_conversation - 1) / peer_per_conversation))
  # shellcheck disable=SC2086
  "$python" "$here/benchmarks/scapy_peers.py" "$stage" "$peer_count" "$runs" ${peer_args[$stage]:-} >"$tmp/peer"
  peer_packets=$(awk '$1 == "run" {print $2; exit}' "$tmp/peer")
  peer_seconds=$(awk '$1 == "run" {print $3}' "$tmp/peer" | median)
  vei_pps=$(awk -v p="$packets" -v us="$(median <<<"$vei_times")" 'BEGIN { printf "%.0f", p / (us / 1e6) }')
  peer_pps=$(awk -v p="$peer_packets" -v s="$peer_seconds" 'BEGIN { printf "%.0f", p / s }')
  ratio=$(awk -v a="$vei_pps" -v b="$peer_pps" 'BEGIN { printf "%.0f", a / b }')
  bar="≥ 100×" result=$(verdict "$ratio" ">=" 100)
  if [[ $stage == http ]]; then
    bar+=", ≥ 1 Mpps"
    [[ $(verdict "$vei_pps" ">=" 1000000) == FAIL ]] && result=FAIL
  fi
  row " $stage " " $per_conversation / $peer_per_conversation " \
    " $(awk -v p="$vei_pps" 'BEGIN { printf "%.2f Mpps", p / 1e6 }') ($packets packets) " \
    " $(awk -v p="$peer_pps" 'BEGIN { printf "%.0f pps", p }') ($peer_packets packets) " " ${ratio}× " " $bar " " $result "
done
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC') · nproc $(nproc) · load average $(cut -d' ' -f1-3 /proc/loadavg) ·" \
  "median of $runs runs · veipipe: \`veipipe run -q -e 'STAGE(..., count=N, rate=10kpps) -> file(/dev/null)'\`," \
  "wall time · Scapy $("$python" -c 'import scapy; print(scapy.__version__)'): the same conversations (benchmarks/scapy_peers.py)" \
  "built and written with wrpcap to /dev/null, timed in Python"
