# Helpers shared by the benchmark scripts (sourced by run.sh and generation.sh).
# shellcheck shell=bash

log() { echo "${0##*/}: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The options every benchmark script takes: `take_option "$@"` reads the first argument (and its
# value) into quick or build_dir, or shows the caller's `usage`; it sets `taken` to the number of
# arguments read, 0 for an argument that is not one of them.
take_option() {
  taken=1
  case $1 in
    --quick) quick=1 ;;
    --build) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; build_dir=$2; taken=2 ;;
    --build=*) build_dir=${1#--build=} ;;
    -h | --help) usage; exit 0 ;;
    *) taken=0 ;;
  esac
}

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# The median of whitespace-separated numbers on standard input.
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

row() {  # cells -> one Markdown table row, each cell trimmed
  local cell line=""
  for cell in "$@"; do
    cell=${cell#"${cell%%[![:space:]]*}"}
    line+="| ${cell%"${cell##*[![:space:]]}"} "
  done
  echo "$line|"
}

verdict() {  # value op bar -> PASS/FAIL
  awk -v v="$1" -v o="$2" -v b="$3" 'BEGIN { ok = (o == ">=") ? v >= b : v <= b; print ok ? "PASS" : "FAIL" }'
}
