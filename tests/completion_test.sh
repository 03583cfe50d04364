#!/usr/bin/env bash
# The bash completion the build generated (cmake/man.cmake): sourced in a real bash, `complete -p`
# shows it bound to veipipe, and COMPREPLY is checked as bash's programmable completion would
# leave it for commands, options, stage names and, inside a quoted description, every stage's
# parameters (against `veipipe stages NAME`), a choice's values and file names.
#
# Usage: tests/completion_test.sh path/to/veipipe path/to/build/completion/veipipe
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/completion/veipipe"
veipipe=$(realpath "${1:?$usage}") || exit 2
script=$(realpath "${2:?$usage}") || exit 2
require completion_test awk sort "$veipipe"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/completion_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
touch campus.pcap capture.pcapng truth.csv

# shellcheck source=/dev/null
source "$script" || { echo "completion_test: sourcing $script failed" >&2; exit 1; }
[[ $(complete -p veipipe) == "complete -F _veipipe veipipe" ]] && pass || fail "complete -p veipipe: $(complete -p veipipe 2>&1)"

# complete_words WORD...: runs the completion as bash does with the cursor at the end of the last
# word: COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT, and $2 the word without an opening quote
# (readline's word inside a quote starts after it). Leaves the replies one a line in $replies.
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  cur=${cur#[\'\"]}
  COMPREPLY=()
  _veipipe veipipe "$cur" "$prev"
  replies=$(printf '%s\n' "${COMPREPLY[@]}" | sort -u)
}
# expect DESCRIPTION EXPECTED WORD...: the sorted replies are EXPECTED (lines).
expect() {
  local what=$1 expected=$2
  shift 2
  complete_words "$@"
  [[ $replies == "$expected" ]] && pass || fail "$what: completing '$*'" "expected: ${expected//$'\n'/ | }" "got:      ${replies//$'\n'/ | }"
}
# includes DESCRIPTION REPLY WORD...: REPLY is among the replies.
includes() {
  local what=$1 reply=$2
  shift 2
  complete_words "$@"
  grep -qxF -- "$reply" <<<"$replies" && pass || fail "$what: '$reply' not offered for '$*'" "got: ${replies//$'\n'/ | }"
}

expect "commands" $'check\ngraph\ninject\nplot\nrun\nstages' veipipe ''
expect "a command prefix" 'stages' veipipe st
expect "run's options" $'--define\n--expression\n--help\n--quiet\n--stats-json' veipipe run --
expect "graph's options" $'--define\n--dot' veipipe graph --d
expect "graph's --do" $'--dot' veipipe graph --do
expect "the program's options" $'--help\n--version' veipipe --
expect "a stage name prefix" $'http' veipipe stages ht
expect "a description file" $'campus.pcap\ncapture.pcapng' veipipe check ca
expect "the --stats-json file" $'truth.csv' veipipe run --stats-json tr

# Inside a description: stage names between calls (after `->`, a label, `;`); the registered ones.
"$veipipe" stages | awk '/^[a-z]+ \(/ { print $1 }' | sort >"$tmp/stages"
expect "every stage" "$(cat "$tmp/stages")" veipipe run -e "'"
expect "a stage after a label" $'pcap(campus.pcap) -> m: merge\npcap(campus.pcap) -> m: merge ' veipipe run -e "'pcap(campus.pcap) -> m: me"
expect "a stage after ;" $'icmp(dst=10.0.0.1); snaplen\nicmp(dst=10.0.0.1); snaplen ' veipipe check -e "'icmp(dst=10.0.0.1); sn"
# Every stage's parameters, as `name=`, against `veipipe stages NAME`.
bad=''
while read -r stage; do
  expected=$("$veipipe" stages "$stage" | awk -v s="$stage(" 'NR > 2 { print s $1 "=" }' | sort)
  complete_words veipipe run -e "'$stage("
  # A path or choice given without its name adds files or values: only the `name=` replies count.
  [[ $(grep '=$' <<<"$replies") == "$expected" ]] || bad+=" $stage"
done <"$tmp/stages"
[[ -z $bad ]] && pass || fail "parameters offered differ from 'veipipe stages' for:$bad"
includes "a parameter after another" 'pcap(campus.pcap, rebase=' veipipe run -e "'pcap(campus.pcap, re"
expect "a choice's values" $'pcap(campus.pcap, rebase=first\npcap(campus.pcap, rebase=first ' veipipe run -e "'pcap(campus.pcap, rebase=f"
expect "a boolean" $'live(eth0, promisc=true\nlive(eth0, promisc=true ' veipipe run -e "'live(eth0, promisc=t"
# Paths: a positional path, a named one (labels=), and in `veipipe inject SOCKET '...'`.
includes "a positional path" 'pcap(campus.pcap' veipipe run -e "'pcap(ca"
includes "a named path" 'pcap(campus.pcap) -> file(out.pcap, labels=truth.csv' veipipe run -e "'pcap(campus.pcap) -> file(out.pcap, labels=tr"
expect "no path for a non-path" '' veipipe run -e "'icmp(dst=ca"
includes "a stage to inject" 'pcap' veipipe inject /tmp/vei.sock "'pc"
summary completion_test
