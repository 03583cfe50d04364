#!/usr/bin/env bash
# Where veipipe's time goes: `perf record` of the four CPU scenarios of benchmarks/run.sh (2-way and
# 8-way merges, 64-byte frames, the 4 GiB pass-through, output /dev/null), each sample put in a
# phase by its symbol, printed as a Markdown table of shares of the samples. With --base, the same
# for another build beside it (before and after a change), the two runs alternating.
#
#   benchmarks/profile.sh [--build DIR] [--base DIR] [--out DIR] [--quick]
#
#   --build DIR  the veipipe to profile (default <repo>/build)
#   --base DIR   another build to profile beside it, e.g. the commit before's
#   --out DIR    where benchmarks/run.sh left its data (default /tmp/veipipe-bench; --quick: its
#                --quick data set)
#
# Phases: the kernel's copy of the inputs into the arenas; the readers' parse; the merge node; the
# output (the sink's writev and the output thread's accounting); fresh pages zeroed (the pools'
# memory, first touched); idle threads (TBB's spinning and yielding, scheduling, the hypervisor's
# interrupt enabling around system calls); the rest (libc's memcpy among it). perf samples CPU time
# on every thread, so the shares are of CPU time; the wall time is from a run without perf.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benchmarks/common.sh
source "$here/benchmarks/common.sh"

usage() { sed -n '7,13p' "$0" | sed 's/^# \{0,1\}//'; }

build_dir=$here/build base_dir="" out_dir=/tmp/veipipe-bench quick=0
while [[ $# -gt 0 ]]; do
  take_option "$@"
  if ((taken == 0)); then
    case $1 in
      --base) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; base_dir=$2; taken=2 ;;
      --out) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; out_dir=$2; taken=2 ;;
      *) log "unknown argument '$1'"; usage >&2; exit 2 ;;
    esac
  fi
  shift "$taken"
done

if ! command -v perf >/dev/null || ! perf --version >/dev/null 2>&1; then
  log "installing linux-perf (Debian's)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends linux-perf >/dev/null ||
    die "cannot install linux-perf"
fi

builds=("$build_dir")
[[ -n $base_dir ]] && builds=("$base_dir" "$build_dir")
for b in "${builds[@]}"; do [[ -x $b/veipipe ]] || die "$b/veipipe not found: build first or pass --build DIR"; done

# The data set's names, as benchmarks/run.sh makes them (its --quick sizes are a sixteenth).
if ((quick)); then
  bg=bg-imix-256MiB inj=inj-imix-64MiB small=small-64B-64MiB eight=imix-16MiB generate="benchmarks/run.sh --quick"
else
  bg=bg-imix-4GiB inj=inj-imix-1GiB small=small-64B-1GiB eight=imix-256MiB generate=benchmarks/run.sh
fi
cd "$out_dir" 2>/dev/null || die "$out_dir not found: run $generate first"
for f in "$bg" "$inj" "$small" eight{1..8}-"$eight"; do
  [[ -f $f.pcap ]] || die "$out_dir/$f.pcap not found: run $generate first"
done
eight_desc="pcap(eight1-$eight.pcap) -> m: merge(end=all) -> file(/dev/null)"
for i in 2 3 4 5 6 7 8; do eight_desc+="; pcap(eight$i-$eight.pcap, rebase=none) -> m"; done
names=("2-way merge" "8-way merge" "64-byte frames" "pass-through")
descs=(
  "pcap($bg.pcap) -> m: merge(end=all) -> file(/dev/null); pcap($inj.pcap, rebase=none) -> m"
  "$eight_desc"
  "pcap($small.pcap) -> file(/dev/null)"
  "pcap($bg.pcap) -> file(/dev/null)"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# perf report's per-symbol shares -> the phases' shares, in the table's column order.
phases() {
  perf report -i "$1" --no-children --sort sym --stdio 2>/dev/null | awk '
    /^#/ || NF < 2 { next }
    {
      share = $1; sub(/%/, "", share); sym = $0
      if (sym ~ /_copy_to_iter|copy_page_to_iter|filemap_|copy_user|folio_mark_accessed|xas_|__libc_pread|ksys_pread|vfs_read/) p = 1
      else if (sym ~ /PcapReader|PcapngReader|InPlaceInput|TimelineSource/) p = 2
      else if (sym ~ /TimestampMerger|run_end|Sheet/) p = 3
      else if (sym ~ /FileWriter|Engine::Impl::send|write_fully|writev|iovec|iov_iter|SeriesCounter/) p = 4
      else if (sym ~ /clear_page|folio_zero|clear_huge|BatchPool/) p = 5
      else if (sym ~ /sched_yield|pvm_irq|__schedule|schedule$|futex|libtbb|0x0000|do_sched_yield|finish_task_switch/) p = 6
      else p = 7
      total[p] += share
    }
    END { for (p = 1; p <= 7; p++) printf "%.0f%% ", total[p]; print "" }'
}

echo "Where the time goes: \`perf record\` (CPU time of every thread, by phase), $(date -u '+%Y-%m-%d %H:%M UTC'),"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); builds: ${builds[*]}"
echo
row " scenario " " build " " wall " " kernel copy in " " parse " " merge " " output " " fresh pages " " idle threads " " other "
row " --- " " --- " " ---: " " ---: " " ---: " " ---: " " ---: " " ---: " " ---: " " ---: "
for i in "${!names[@]}"; do
  for b in "${builds[@]}"; do
    data=$tmp/perf.data
    # Wall time from a run of its own: perf's start and its writing of samples are not veipipe's.
    start=$(now_us)
    "$b/veipipe" run -q -e "${descs[$i]}" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; die "veipipe failed on ${names[$i]}"; }
    wall=$(( ($(now_us) - start) / 1000 ))
    perf record -q -o "$data" -- "$b/veipipe" run -q -e "${descs[$i]}" >/dev/null 2>"$tmp/err" ||
      { cat "$tmp/err" >&2; die "veipipe failed on ${names[$i]} under perf"; }
    read -r -a share <<<"$(phases "$data")"
    row " ${names[$i]} " " $b " " ${wall} ms " "${share[@]}"
  done
done
