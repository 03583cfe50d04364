# Helpers shared by the benchmark scripts (sourced by run.sh and generation.sh).
# shellcheck shell=bash

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
