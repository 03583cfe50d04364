#!/usr/bin/env bash
# veipipe benchmarks: generates the traces with veigen, then times veipipe and its peer side by side
# (mergecap, tcpdump, editcap, tcprewrite, cat, cp) with the page cache warm, and prints a Markdown table
# (also written to DIR/results.md), then the generation speed of the conversation stages beside Scapy
# (benchmarks/generation.sh, appended to it).
#
#   benchmarks/run.sh [generation|formats] [--quick] [--out DIR] [--build DIR] [--plan]
#
#   generation   only the generation section, written to DIR/generation.md (no data set is generated)
#   formats      only the formats section (pcapng out and in, gzip and zstd input), on the background
#                and its pcapng form, written to DIR/formats.md
#   --quick      every data size divided by 16 (time offsets too), 5 runs instead of 3: a smoke run
#   --out DIR    where the data and results go (default /tmp/veipipe-bench); data is reused when the
#                same files with the same generation parameters are already there
#   --build DIR  where the veipipe and veigen binaries are (default <repo>/build)
#   --plan       print the data set (files, veigen arguments, disk space needed) and exit
#
# Times are wall-clock medians; peak RSS is the largest `/usr/bin/time -f %M` over the runs.
# Rows to /dev/null measure CPU cost; the disk rows are end to end: `cmd && sync`, outputs deleted
# and `sync` before each run so that neither side is flattered by page-cache-only writes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir=/tmp/veipipe-bench
build_dir=$here/build
quick=0
plan=0
generation_only=0
formats_only=0

usage() { sed -n '2,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# shellcheck source=benchmarks/common.sh
source "$here/benchmarks/common.sh"
while (($#)); do
  take_option "$@"
  if ((taken)); then shift "$taken"; continue; fi
  case $1 in
    generation) generation_only=1 ;;
    formats) formats_only=1 ;;
    --plan) plan=1 ;;
    --out) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; out_dir=$2; shift ;;
    --out=*) out_dir=${1#--out=} ;;
    *) log "unknown argument '$1'"; usage >&2; exit 2 ;;
  esac
  shift
done

generation=("$here/benchmarks/generation.sh" --build "$build_dir")
((quick)) && generation+=(--quick)
if ((generation_only)); then
  mkdir -p "$out_dir"
  "${generation[@]}" | tee "$out_dir/generation.md"
  exit 0
fi

bash "$here/scripts/setup.sh"

veipipe=$build_dir/veipipe
veigen=$build_dir/veigen
nech0=$build_dir/nech0
# vei.h paces at the background's timing by default; the benchmark measures throughput.
export VEI_SPEED=topspeed
vei_pinger=$build_dir/vei_pinger
for b in "$veipipe" "$veigen" "$nech0" "$vei_pinger"; do
  [[ -x $b ]] || die "$b not found: build first (bash scripts/build.sh) or pass --build DIR"
done
for t in mergecap editcap tcprewrite tcpdump gzip zstd zcat zstdcat cmp /usr/bin/time; do
  command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh should have installed it)"
done
if [[ -n $(find "$here/stages" "$here/pipeline" "$here/tools" -newer "$veipipe" \( -name '*.cpp' -o -name '*.h' \) -print -quit) ]]; then
  log "warning: sources are newer than $veipipe: rebuild for up-to-date numbers"
fi

# ---------------------------------------------------------------------------------------------------
# Data set. Sizes in bytes; --quick divides sizes and start offsets by 16 so the overlaps keep shape.
KiB=1024 MiB=$((1024 * 1024)) GiB=$((1024 * 1024 * 1024))
scale=1
runs=3
if ((quick)); then scale=16 runs=5; fi
bg_size=$((4 * GiB / scale))
inj_size=$((1 * GiB / scale))
small_size=$((1 * GiB / scale))
eight_size=$((256 * MiB / scale))
base_start=1700000000
# Background: 4 GiB IMIX at 200 kpps lasts ~57 s; the injection (same rate) starts 1 s later and
# lasts ~14 s, so the two interleave packet by packet. The 8 traces start 0.2 s apart and last ~3.6 s.
inj_offset_us=$((1000000 / scale))
eight_step_us=$((200000 / scale))

human() {  # bytes -> "4 GiB" / "256 MiB"
  local b=$1
  if ((b % GiB == 0)); then echo "$((b / GiB)) GiB"
  elif ((b % MiB == 0)); then echo "$((b / MiB)) MiB"
  elif ((b % KiB == 0)); then echo "$((b / KiB)) KiB"
  else echo "$b B"; fi
}
start_at() {  # microseconds after base_start -> epoch seconds with 6 decimals
  printf '%d.%06d' $((base_start + $1 / 1000000)) $(($1 % 1000000))
}
tag() { human "$1" | tr -d ' '; }

mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
manifest=$out_dir/MANIFEST

# name | veigen arguments (without -o)
specs=()
bg=$out_dir/bg-imix-$(tag "$bg_size").pcap
specs+=("$bg|--size $bg_size --seed 1 --rate 200kpps --mix imix --start $(start_at 0)")
inj=$out_dir/inj-imix-$(tag "$inj_size").pcap
specs+=("$inj|--size $inj_size --seed 2 --rate 200kpps --mix imix --start $(start_at "$inj_offset_us")")
small=$out_dir/small-64B-$(tag "$small_size").pcap
specs+=("$small|--size $small_size --seed 3 --rate 1Mpps --mix 64 --start $(start_at 0)")
eight=()
for i in 1 2 3 4 5 6 7 8; do
  f=$out_dir/eight$i-imix-$(tag "$eight_size").pcap
  eight+=("$f")
  specs+=("$f|--size $eight_size --seed $((10 + i)) --rate 200kpps --mix imix --start $(start_at $(((i - 1) * eight_step_us)))")
done
# pcapng input: veigen's pcapng (issue 13), half the background's size.
ng_size=$((2 * GiB / scale))
ng=$out_dir/ng-imix-$(tag "$ng_size").pcapng
specs+=("$ng|--size $ng_size --seed 4 --rate 200kpps --mix imix --start $(start_at 0) --format pcapng")
# The formats section needs the background and the pcapng alone.
((formats_only)) && specs=("${specs[0]}" "${specs[-1]}")

declare -A packets=()
# A file is reused when MANIFEST has a line "<name>\t<args>\t<bytes>\t<packets>" matching its size.
reusable() {
  local file=$1 args=$2 name margs bytes count
  [[ -f $file && -f $manifest ]] || return 1
  while IFS=$'\t' read -r name margs bytes count; do
    if [[ $name == "$(basename "$file")" && $margs == "$args" && $bytes == "$(stat -c %s "$file")" ]]; then
      packets[$file]=$count
      return 0
    fi
  done <"$manifest"
  return 1
}

todo=()
need=$bg_size  # the disk scenarios write one copy of the background at a time
for spec in "${specs[@]}"; do
  file=${spec%%|*} args=${spec#*|}
  if ! reusable "$file" "$args"; then
    todo+=("$spec")
    size=${args#--size }
    need=$((need + ${size%% *}))
  fi
done
avail=$(($(df --output=avail -B1 "$out_dir" | tail -n 1)))
if ((plan)); then
  for spec in "${specs[@]}"; do
    file=${spec%%|*} args=${spec#*|}
    state=generate
    reusable "$file" "$args" && state=reuse
    printf '%-8s %s: veigen %s\n' "$state" "$file" "$args"
  done
  echo "disk: $((need / MiB)) MiB needed (data to generate + one copy of the background), $((avail / MiB)) MiB free"
  exit 0
fi
if ((avail < need)); then
  log "skipped: $out_dir has $((avail / MiB)) MiB free, this run needs $((need / MiB)) MiB" \
    "(data still to generate plus one copy of the background). Free space or pass --out DIR."
  exit 0
fi

# Everything the script writes besides the data and results.md lives here or is listed in cleanup.
tmp=$(mktemp -d "$out_dir/.run.XXXXXX")
disk_out=$out_dir/out.pcap
disk_cp=$out_dir/cp.pcap
cleanup() { rm -rf "$tmp" "$disk_out" "$disk_cp" "$out_dir"/*.partial; }
trap cleanup EXIT

if ((${#todo[@]})); then
  for spec in "${todo[@]}"; do
    file=${spec%%|*} args=${spec#*|}
    log "generating $(basename "$file") ($args)"
    read -ra argv <<<"$args"
    "$veigen" -o "$file.partial" "${argv[@]}" 2>"$tmp/veigen.log" || { cat "$tmp/veigen.log" >&2; die "veigen failed"; }
    count=$(sed -n 's/^veigen: wrote \([0-9]*\) packets.*/\1/p' "$tmp/veigen.log")
    [[ -n $count ]] || { cat "$tmp/veigen.log" >&2; die "cannot read the packet count from veigen's output"; }
    mv "$file.partial" "$file"
    packets[$file]=$count
    if [[ -f $manifest ]]; then
      grep -v -F "$(basename "$file")"$'\t' "$manifest" >"$tmp/manifest" || true
      cat "$tmp/manifest" >"$manifest"
    fi
    printf '%s\t%s\t%s\t%s\n' "$(basename "$file")" "$args" "$(stat -c %s "$file")" "$count" >>"$manifest"
  done
  log "flushing the generated data to disk"
  sync
fi

# ---------------------------------------------------------------------------------------------------
# Measurement.
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A times=() rss=()  # key -> space-separated wall times (µs); key -> peak RSS (KiB)

# run_once KEY MODE CMD...: MODE is "null" (time the command) or "disk" (sync first, time `cmd && sync`).
run_once() {
  local key=$1 mode=$2 t0 t1 r
  shift 2
  [[ $mode == disk ]] && sync
  t0=$(now_us)
  if ! /usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/cmd.log"; then
    cat "$tmp/cmd.log" >&2
    die "failed: $*"
  fi
  [[ $mode == disk ]] && sync
  t1=$(now_us)
  times[$key]="${times[$key]:-} $((t1 - t0))"
  r=$(tail -n 1 "$tmp/rss")
  ((r > ${rss[$key]:-0})) && rss[$key]=$r
  return 0
}

warm() { cat "$@" >/dev/null; }

bytes_of() { local s=0 f; for f in "$@"; do s=$((s + $(stat -c %s "$f"))); done; echo "$s"; }
packets_of() { local s=0 f; for f in "$@"; do s=$((s + ${packets[$f]})); done; echo "$s"; }

# check_stats EXPECTED: the last veipipe run wrote every packet of its inputs.
check_stats() {
  local got
  got=$(grep -o '"packets":[0-9]*' "$tmp/stats.json" | head -n 1 | cut -d: -f2)
  [[ $got == "$1" ]] || die "veipipe wrote ${got:-?} packets, expected $1"
}

vp=("$veipipe" run -q --stats-json "$tmp/stats.json" -e)

fmt_time() {  # key bytes packets unit(GB|Mpps) -> "1.234 s, 3.48 GB/s"
  local m
  m=$(median <<<"${times[$1]}")
  awk -v us="$m" -v b="$2" -v p="$3" -v u="$4" 'BEGIN {
    s = us / 1e6
    if (u == "Mpps") printf "%.3f s, %.2f Mpps (%.2f GB/s)", s, p / s / 1e6, b / s / 1e9
    else printf "%.3f s, %.2f GB/s", s, b / s / 1e9 }'
}
ratio() { awk -v a="$(median <<<"${times[$1]}")" -v b="$(median <<<"${times[$2]}")" 'BEGIN { printf "%.2f", b / a }'; }
mib() { awk -v k="${rss[$1]}" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# Formats (issue 13): pcapng output against the pcap output of the same run, pcapng input against
# tcpdump, and gzip and zstd copies of the background, whose output must equal the plain one's.
formats() {
  log "formats: pcapng output, pcapng input"
  warm "$bg" "$ng"
  for ((i = 0; i < runs; i++)); do
    run_once ngout.pcap null "${vp[@]}" "pcap($bg) -> file(/dev/null)"
    run_once ngout.vei null "${vp[@]}" "pcap($bg) -> file(/dev/null, format=pcapng)"
    check_stats "$(packets_of "$bg")"
    run_once ngin.vei null "${vp[@]}" "pcap($ng) -> file(/dev/null)"
    check_stats "$(packets_of "$ng")"
    run_once ngin.peer null tcpdump -r "$ng" -w /dev/null
  done
  log "formats: gzip and zstd copies of the background"
  [[ $bg.gz -nt $bg ]] || { gzip -1 -c "$bg" >"$bg.gz.partial" && mv "$bg.gz.partial" "$bg.gz"; }
  [[ $bg.zst -nt $bg ]] || { zstd -q -1 -T0 -c "$bg" >"$bg.zst.partial" && mv "$bg.zst.partial" "$bg.zst"; }
  warm "$bg.gz" "$bg.zst"
  for ((i = 0; i < runs; i++)); do
    run_once gz.vei null "${vp[@]}" "pcap($bg.gz) -> file(/dev/null)"
    check_stats "$(packets_of "$bg")"
    run_once gz.peer null zcat "$bg.gz"
    run_once zst.vei null "${vp[@]}" "pcap($bg.zst) -> file(/dev/null)"
    check_stats "$(packets_of "$bg")"
    run_once zst.peer null zstdcat "$bg.zst"
  done
  same_bytes=yes
  for c in gz zst; do
    cmp -s <("$veipipe" run -q -e "pcap($bg.$c) -> file(-)") <("$veipipe" run -q -e "pcap($bg) -> file(-)") || same_bytes=no
  done
}

formats_table() {
  local b_ng p_ng r_out r_in r_gz r_zst
  b_ng=$(bytes_of "$ng") p_ng=$(packets_of "$ng")
  r_out=$(ratio ngout.vei ngout.pcap)
  r_in=$(ratio ngin.vei ngin.peer)
  r_gz=$(ratio gz.vei gz.peer)
  r_zst=$(ratio zst.vei zst.peer)
  echo "### Formats"
  echo
  row " scenario " " kind " " veipipe " " peer " " ratio " " veipipe peak RSS " " peer peak RSS " " bar " " result "
  row "---" "---" "---:" "---:" "---:" "---:" "---:" "---" "---"
  row " pcapng output of $(human "$bg_size") → /dev/null vs pcap output of the same run " " CPU " \
    " $(fmt_time ngout.vei "$b_bg" "$p_bg" GB) " " $(fmt_time ngout.pcap "$b_bg" "$p_bg" GB) " \
    " ${r_out}× " " $(mib ngout.vei) " " $(mib ngout.pcap) " " ≥ 0.9× " " $(verdict "$r_out" ">=" 0.9) "
  row " pcapng input $(human "$ng_size") (veigen) → /dev/null vs tcpdump -r -w " " CPU " \
    " $(fmt_time ngin.vei "$b_ng" "$p_ng" GB) " " $(fmt_time ngin.peer "$b_ng" "$p_ng" GB) " \
    " ${r_in}× " " $(mib ngin.vei) " " $(mib ngin.peer) " " ≥ 3× " " $(verdict "$r_in" ">=" 3) "
  row " gzip -1 copy of $(human "$bg_size") → /dev/null vs zcat " " CPU " \
    " $(fmt_time gz.vei "$b_bg" "$p_bg" GB) " " $(fmt_time gz.peer "$b_bg" "$p_bg" GB) " \
    " ${r_gz}× " " $(mib gz.vei) " " $(mib gz.peer) " " – " " – "
  row " zstd -1 copy of $(human "$bg_size") → /dev/null vs zstdcat " " CPU " \
    " $(fmt_time zst.vei "$b_bg" "$p_bg" GB) " " $(fmt_time zst.peer "$b_bg" "$p_bg" GB) " \
    " ${r_zst}× " " $(mib zst.vei) " " $(mib zst.peer) " " – " " – "
  row " gzip and zstd copies give the plain background's output bytes (cmp) " " correctness " " – " " – " " – " \
    " – " " – " " same bytes " " $([[ $same_bytes == yes ]] && echo PASS || echo FAIL) "
  echo
  echo "Throughput is the plain trace's bytes per second (for pcapng input, the pcapng file's)."
}

if ((formats_only)); then
  formats
  b_bg=$(bytes_of "$bg") p_bg=$(packets_of "$bg")
  {
    echo "## veipipe benchmarks: formats"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC') · nproc $(nproc) · veipipe $(git -C "$here" rev-parse --short HEAD 2>/dev/null)" \
      "· median of $runs runs, page cache warm · load average at start $load_at_start"
    echo
    formats_table
  } | tee "$out_dir/formats.md"
  exit 0
fi

log "2-way merge"
warm "$bg" "$inj"
desc_merge2="pcap($bg) -> m: merge(end=all) -> file(/dev/null); pcap($inj, rebase=none) -> m"
for ((i = 0; i < runs; i++)); do
  run_once merge2.vei null "${vp[@]}" "$desc_merge2"
  check_stats "$(packets_of "$bg" "$inj")"
  run_once merge2.peer null mergecap -F pcap -w /dev/null "$bg" "$inj"
done

log "64-byte pass-through"
warm "$small"
for ((i = 0; i < runs; i++)); do
  run_once small.vei null "${vp[@]}" "pcap($small) -> file(/dev/null)"
  check_stats "$(packets_of "$small")"
  run_once small.peer null tcpdump -r "$small" -w /dev/null
done

log "8-way merge"
warm "${eight[@]}"
desc_merge8="pcap(${eight[0]}) -> m: merge(end=all) -> file(/dev/null)"
for f in "${eight[@]:1}"; do desc_merge8+="; pcap($f, rebase=none) -> m"; done
for ((i = 0; i < runs; i++)); do
  run_once merge8.vei null "${vp[@]}" "$desc_merge8"
  check_stats "$(packets_of "${eight[@]}")"
  run_once merge8.peer null mergecap -F pcap -w /dev/null "${eight[@]}"
done

log "background pass-through"
warm "$bg"
for ((i = 0; i < runs; i++)); do
  run_once pass.vei null "${vp[@]}" "pcap($bg) -> file(/dev/null)"
  check_stats "$(packets_of "$bg")"
  run_once pass.cat null cat "$bg"
  run_once pass.editcap null editcap -F pcap "$bg" /dev/null
done

log "transforms: snaplen, rewrite"
warm "$bg"
desc_rewrite="pcap($bg) -> rewrite(ip=\"192.168.0.0/16:10.99.0.0/16\") -> file(/dev/null)"
for ((i = 0; i < runs; i++)); do
  run_once snaplen.vei null "${vp[@]}" "pcap($bg) -> snaplen(96) -> file(/dev/null)"
  check_stats "$(packets_of "$bg")"
  run_once snaplen.peer null editcap -F pcap -s 96 "$bg" /dev/null
  run_once rewrite.vei null "${vp[@]}" "$desc_rewrite"
  check_stats "$(packets_of "$bg")"
  run_once rewrite.peer null tcprewrite --pnat=192.168.0.0/16:10.99.0.0/16 -i "$bg" -o /dev/null
done

log "output to a disk file"
warm "$bg"
for ((i = 0; i < runs; i++)); do
  run_once disk.vei disk "${vp[@]}" "pcap($bg) -> file($disk_out)"
  check_stats "$(packets_of "$bg")"
  [[ $(stat -c %s "$disk_out") == "$(stat -c %s "$bg")" ]] || die "$disk_out differs in size from $bg"
  rm -f "$disk_out"
  # --reflink=never: on a CoW file system cp would otherwise share extents instead of copying.
  run_once disk.peer disk cp --reflink=never "$bg" "$disk_cp"
  rm -f "$disk_cp"
done
sync

formats

log "injection overhead (vei.h)"
warm "$bg"
for ((i = 0; i < runs; i++)); do
  run_once vei.plain null "$nech0" "$bg" /dev/null
  run_once vei.inject null "$vei_pinger" "$bg" /dev/null 1000
done

# ---------------------------------------------------------------------------------------------------
# Report.

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
fs=$(df --output=fstype,source "$out_dir" | tail -n 1 | awk '{print $1 " on " $2}')
mode=full
((quick)) && mode="quick (sizes ÷16; bars are indicative only at this size)"

b_merge2=$(bytes_of "$bg" "$inj") p_merge2=$(packets_of "$bg" "$inj")
b_small=$(bytes_of "$small") p_small=$(packets_of "$small")
b_merge8=$(bytes_of "${eight[@]}") p_merge8=$(packets_of "${eight[@]}")
b_bg=$(bytes_of "$bg") p_bg=$(packets_of "$bg")

r_merge2=$(ratio merge2.vei merge2.peer)
r_small=$(ratio small.vei small.peer)
r_merge8=$(ratio merge8.vei merge8.peer)
r_cat=$(ratio pass.vei pass.cat)
r_editcap=$(ratio pass.vei pass.editcap)
r_disk=$(ratio disk.vei disk.peer)
r_snaplen=$(ratio snaplen.vei snaplen.peer)
r_rewrite=$(ratio rewrite.vei rewrite.peer)
# Injection's cost: extra transcription time with 1,000 events/s injected, in percent.
inject_pct=$(awk -v a="$(median <<<"${times[vei.plain]}")" -v b="$(median <<<"${times[vei.inject]}")" \
  'BEGIN { printf "%+.1f", (b / a - 1) * 100 }')
rss_merge2_mib=$(awk -v k="${rss[merge2.vei]}" 'BEGIN { printf "%.1f", k / 1024 }')

{
  echo "## veipipe benchmarks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC') · nproc $(nproc) · $cpu · kernel $(uname -r) · veipipe $commit" \
    "(${build_type:-unknown build type}) · mode: $mode · median of $runs runs, page cache warm ·" \
    "load average at start $load_at_start · output file system $fs"
  echo
  row " scenario " " kind " " veipipe " " peer " " ratio " " veipipe peak RSS " " peer peak RSS " " bar " " result "
  row "---" "---" "---:" "---:" "---:" "---:" "---:" "---" "---"
  row " 2-way merge $(human "$bg_size") + $(human "$inj_size") → /dev/null vs mergecap -F pcap " " CPU " \
    " $(fmt_time merge2.vei "$b_merge2" "$p_merge2" GB) " " $(fmt_time merge2.peer "$b_merge2" "$p_merge2" GB) " \
    " ${r_merge2}× " " $(mib merge2.vei) " " $(mib merge2.peer) " " ≥ 5× " " $(verdict "$r_merge2" ">=" 5) "
  row " 64-byte pass-through $(human "$small_size") → /dev/null vs tcpdump -r -w (packets/s) " " CPU " \
    " $(fmt_time small.vei "$b_small" "$p_small" Mpps) " " $(fmt_time small.peer "$b_small" "$p_small" Mpps) " \
    " ${r_small}× " " $(mib small.vei) " " $(mib small.peer) " " ≥ 6× " " $(verdict "$r_small" ">=" 6) "
  row " 8-way merge 8 × $(human "$eight_size") → /dev/null vs mergecap -F pcap " " CPU " \
    " $(fmt_time merge8.vei "$b_merge8" "$p_merge8" GB) " " $(fmt_time merge8.peer "$b_merge8" "$p_merge8" GB) " \
    " ${r_merge8}× " " $(mib merge8.vei) " " $(mib merge8.peer) " " ≥ 5× " " $(verdict "$r_merge8" ">=" 5) "
  row " pass-through $(human "$bg_size") → /dev/null vs cat " " CPU " \
    " $(fmt_time pass.vei "$b_bg" "$p_bg" GB) " " $(fmt_time pass.cat "$b_bg" "$p_bg" GB) " \
    " ${r_cat}× " " $(mib pass.vei) " " $(mib pass.cat) " " ≥ 0.85× " " $(verdict "$r_cat" ">=" 0.85) "
  row " pass-through $(human "$bg_size") → /dev/null vs editcap -F pcap " " CPU " \
    " $(fmt_time pass.vei "$b_bg" "$p_bg" GB) " " $(fmt_time pass.editcap "$b_bg" "$p_bg" GB) " \
    " ${r_editcap}× " " $(mib pass.vei) " " $(mib pass.editcap) " " – " " – "
  row " snaplen(96) of $(human "$bg_size") → /dev/null vs editcap -s 96 -F pcap " " CPU " \
    " $(fmt_time snaplen.vei "$b_bg" "$p_bg" GB) " " $(fmt_time snaplen.peer "$b_bg" "$p_bg" GB) " \
    " ${r_snaplen}× " " $(mib snaplen.vei) " " $(mib snaplen.peer) " " – " " – "
  row " rewrite(ip=192.168/16:10.99/16) of $(human "$bg_size") → /dev/null vs tcprewrite --pnat " " CPU " \
    " $(fmt_time rewrite.vei "$b_bg" "$p_bg" GB) " " $(fmt_time rewrite.peer "$b_bg" "$p_bg" GB) " \
    " ${r_rewrite}× " " $(mib rewrite.vei) " " $(mib rewrite.peer) " " – " " – "
  row " $(human "$bg_size") to a disk file vs cp, each \`cmd && sync\` " " end-to-end (disk) " \
    " $(fmt_time disk.vei "$b_bg" "$p_bg" GB) " " $(fmt_time disk.peer "$b_bg" "$p_bg" GB) " \
    " ${r_disk}× " " $(mib disk.vei) " " $(mib disk.peer) " " ≥ 0.9× " " $(verdict "$r_disk" ">=" 0.9) "
  row " transcription of $(human "$bg_size") through vei.h → /dev/null: nech0 vs vei_pinger injecting 1,000 pings/s " \
    " CPU " " $(fmt_time vei.inject "$b_bg" "$p_bg" GB) (injecting) " " $(fmt_time vei.plain "$b_bg" "$p_bg" GB) (alone) " \
    " ${inject_pct}% time " " $(mib vei.inject) " " $(mib vei.plain) " " ≤ +10% " " $(verdict "$inject_pct" "<=" 10) "
  row " peak RSS, 2-way merge $(human "$bg_size") + $(human "$inj_size") " " memory " \
    " – " " – " " – " " $(mib merge2.vei) " " $(mib merge2.peer) " " ≤ 64 MiB " " $(verdict "$rss_merge2_mib" "<=" 64) "
  echo
  echo "CPU rows write to /dev/null, so they measure the cost of reading, merging and framing with the"
  echo "input in the page cache. The disk row is end to end: each run starts after \`sync\` with no output"
  echo "file and is timed up to the end of a \`sync\` after it (cp is \`cp --reflink=never\`). Throughput is"
  echo "input bytes (file framing included) per second; ratio = veipipe throughput / peer throughput."
  echo "Bars (issues 2 and 15) hold for the full-size data on a 2-core machine."
  echo
  formats_table
} | tee "$out_dir/results.md"
echo
"${generation[@]}" | tee -a "$out_dir/results.md"
