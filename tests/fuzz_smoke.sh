#!/usr/bin/env bash
# Fuzz smoke run, about half a minute in all (two targets at a time, one per core): replays the
# inputs kept in tests/fuzz_regressions/<target>/ through each libFuzzer target, then fuzzes each
# target for a few seconds from its seeds (the test descriptions and control lines, shared/corpus).
# Any crash, sanitizer report, leak, timeout or broken invariant fails; the input is left in the
# working directory as crash-*/leak-*/timeout-*.
#
# usage: fuzz_smoke.sh FUZZ_BIN_DIR CORPUS_DIR
#   FUZZ_SMOKE_SECONDS  seconds of fuzzing per target (default 7; CI has 40 minutes for everything)
#   FUZZ_SMOKE_SEED     libFuzzer's random seed (default 1, so that a run can be repeated)
set -uo pipefail
bin=$1
corpus=$2
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SMOKE_SECONDS:-7}
seed=${FUZZ_SMOKE_SEED:-1}
targets=(description control pcap pcapng pcapng_reader flow_id script pcapng_writer)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/fuzz/make_seeds.py" "$here" "$corpus" "$work/seeds" 2>/dev/null || { echo "FAIL: seeds"; exit 1; }
# pcapng_reader's inputs are lists of blocks it frames (fuzz/fuzz_pcapng_reader.cpp): it starts empty.
mkdir -p "$work/seeds/pcapng_reader"

# fail WHAT [LOG]: a failure line, then the end of LOG.
fail() {
  echo "FAIL: $1"
  [[ -f ${2:-} ]] && grep -v '^#[0-9]\|^INFO\|^\s*$' "$2" | tail -40
}

# smoke TARGET: replays the target's kept inputs, then fuzzes it; a line "ok: ..." or "FAIL: ..." each.
smoke() {
  local t=$1 exe=$bin/fuzz_$1
  [[ -x $exe ]] || { fail "$exe is missing (build the fuzzers: ninja fuzzers)"; return; }
  local options=(-timeout=10 -rss_limit_mb=2048 -seed="$seed" -artifact_prefix="$PWD/$t-")
  case $t in
    description | control) options+=(-dict="$here/fuzz/description.dict" -max_len=4096) ;;
    script) options+=(-max_len=4096) ;;
    pcap | pcapng | pcapng_reader) options+=(-max_len=65536) ;;
    flow_id) options+=(-max_len=512) ;;
    pcapng_writer) options+=(-max_len=8192) ;; # builds its input from nothing: no seeds
  esac
  mkdir -p "$work/seeds/$t"

  # The kept crash inputs, one run each.
  local kept
  mapfile -t kept < <(find "$here/tests/fuzz_regressions/$t" -type f 2>/dev/null | sort)
  if ((${#kept[@]})); then
    if "$exe" "${options[@]}" "${kept[@]}" >"$work/$t.replay.log" 2>&1; then
      echo "ok: $t: ${#kept[@]} kept input(s) replayed"
    else
      fail "$t: a kept input fails again" "$work/$t.replay.log"
    fi
  fi

  # A short fuzzing run from the seeds; new inputs go to a scratch directory.
  mkdir -p "$work/new-$t"
  if "$exe" "${options[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work/new-$t" "$work/seeds/$t" \
    >"$work/$t.log" 2>&1; then
    local runs cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1)
    echo "ok: $t: $runs runs in ${seconds}s, $cov, seed $seed"
  else
    fail "$t: fuzzing found a problem (seed $seed; the input is in $PWD/$t-*)" "$work/$t.log"
  fi
}

# Two targets at a time, one per core; each target's lines are printed in the targets' order.
for t in "${targets[@]}"; do
  smoke "$t" >"$work/$t.out" &
  (($(jobs -rp | wc -l) < 2)) || wait -n
done
wait
for t in "${targets[@]}"; do cat "$work/$t.out"; done
passed=$(cat "$work"/*.out | grep -c '^ok:')
failed=$(cat "$work"/*.out | grep -c '^FAIL:')
echo "fuzz smoke: $passed passed, $failed failed"
((failed == 0))
