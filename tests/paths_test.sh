#!/usr/bin/env bash
# No run destroys its own inputs (issue 10, item 10). Every path a run writes (the output, its
# labels, --stats-json, a control socket) that is the same file as an input or as another written
# path is refused before anything is opened for writing: exit 2, with a description error and a
# caret under the path (a usage error for --stats-json), and every file left as it was: same
# checksums, sizes, inodes and times, no file created or removed.
#
# Usage: tests/paths_test.sh path/to/veipipe path/to/veigen
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/veigen"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
require paths_test sha256sum find sort diff timeout cp cmp "$veipipe" "$veigen"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paths_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
limit=60 # seconds allowed to every run: a hang (say, a control socket waiting) fails instead of blocking

# The files every case starts from, in $tmp/pristine: a background, the output of an earlier run,
# a symlink and a hard link to the background, an empty directory for `sub/..` spellings.
mkdir "$tmp/pristine" "$tmp/logs" || exit 1
cd "$tmp/pristine" || exit 1
timeout "$limit" "$veigen" -o bg.pcap --count 200 --seed 3 >/dev/null 2>"$tmp/logs/gen.err" ||
  { echo "paths_test: veigen failed: $(cat "$tmp/logs/gen.err")" >&2; exit 1; }
timeout "$limit" "$veipipe" run -q -e 'pcap(bg.pcap) -> file(prev.pcap)' 2>"$tmp/logs/prev.err" ||
  { echo "paths_test: the earlier run failed: $(cat "$tmp/logs/prev.err")" >&2; exit 1; }
ln -s bg.pcap link.pcap && ln bg.pcap hard.pcap && mkdir sub || exit 1

# Each case runs in a fresh copy ($tmp/work), so that one that destroys a file spoils no other.
work=$tmp/work
fresh() { rm -rf "$work" && cp -a "$tmp/pristine" "$work" && cd "$work" || return; }

# Every entry of the work directory (type, inode, size, modification time) and every file's
# checksum: a truncation, a rewrite with the same bytes, a replacement, a created or removed file
# (even a socket bound then unlinked, by the directory's time) all change it.
snapshot() {
  find . -printf '%p %y inode=%i size=%s mtime=%T@\n' | sort
  find . -type f -exec sha256sum {} + | sort -k2
}

# refused NAME MODE PATH ARGS...: `veipipe ARGS...` in a fresh work directory, standard input from
# $stdin_from (default /dev/null) and, if $stdout_to is set, standard output appended to it, is refused:
#   exit 2; an `error:` line on stderr names PATH (and $names, if set);
#   MODE `usage`: an error naming --stats-json (no position in the description);
#   MODE `caret:ANCHOR[|ANCHOR...]`: a description error `<where>:1:COL: error:` with a caret line
#     `| ^~~`, COL the first character after one of the ANCHORs in the description (the last
#     argument), i.e. under one of the written paths that clash;
#   every file as it was (snapshot), nothing created.
# Each check counts on its own; the run's context is printed with the case's first failure only.
refused() {
  local name=$1 mode=$2 path=$3
  shift 3
  local err=$tmp/logs/$name.err before after rc description=${*: -1} shown=0
  fresh || { fail "$name: fresh work directory"; return; }
  before=$(snapshot)
  if [[ -n ${stdout_to:-} ]]; then
    timeout "$limit" "$veipipe" "$@" <"${stdin_from:-/dev/null}" >>"$stdout_to" 2>"$err"
  else
    timeout "$limit" "$veipipe" "$@" <"${stdin_from:-/dev/null}" >"$tmp/logs/$name.out" 2>"$err"
  fi
  rc=$?
  after=$(snapshot)
  local -a ctx=("command: veipipe $(printf '%q ' "$@")" "exit status: $rc" "stderr:")
  mapfile -t -O 3 ctx < <(head -n 8 "$err" | sed 's/^/  | /')
  check() { # check WHAT OK [EXTRA-LINE...]
    local what=$1 ok=$2
    shift 2
    if ((ok)); then pass; elif ((shown++)); then fail "$name: $what" "$@"; else fail "$name: $what" "${ctx[@]}" "$@"; fi
  }

  check "exit 2" "$((rc == 2))"
  check "an error line names $path" "$(grep 'error: ' "$err" | grep -cF -- "$path")"
  [[ -z ${names:-} ]] || check "an error line names $names" "$(grep 'error: ' "$err" | grep -cF -- "$names")"
  if [[ $mode == usage ]]; then
    check "an error naming --stats-json" "$(grep -c -- 'error: .*--stats-json' "$err")"
  else
    local anchor anchors=() cols=() col ok=0
    IFS='|' read -ra anchors <<<"${mode#caret:}"
    for anchor in "${anchors[@]}"; do
      local before_anchor=${description%%"$anchor"*}
      [[ $before_anchor != "$description" ]] && cols+=($((${#before_anchor} + ${#anchor} + 1)))
    done
    while read -r col; do
      [[ " ${cols[*]} " == *" $col "* ]] && ok=1
    done < <(sed -n 's/^.*:1:\([0-9][0-9]*\): error: .*/\1/p' "$err")
    local columns="${cols[*]}"
    check "a description error at column ${columns// / or } (under a written path)" "$ok"
    check "a caret line" "$(grep -cE '^ *[0-9]* *\| *\^~*$' "$err")"
  fi
  local -a changes=()
  mapfile -t changes < <(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | sed 's/^/  /')
  check "every file as it was, nothing created" "$((${#changes[@]} == 0))" \
    "changes (< before, > after):" "${changes[@]}"
}

# refused_both NAME ANCHORS PATH DESCRIPTION: refused by `run` and by `check` alike (with the same
# $stdin_from, $stdout_to and $names).
refused_both() {
  refused "$1.run" "caret:$2" "$3" run -q -e "$4"
  refused "$1.check" "caret:$2" "$3" check -e "$4"
}

# ---- the issue's three cases
refused_both labels_input 'labels=' bg.pcap 'pcap(bg.pcap) -> file(o.pcap, labels=bg.pcap)'
refused_both labels_output 'file(|labels=' o.pcap 'pcap(bg.pcap) -> file(o.pcap, labels=o.pcap)'
refused stats_input usage bg.pcap run -q --stats-json bg.pcap -e 'pcap(bg.pcap) -> file(o.pcap)'

# ---- the same, spelled otherwise or with other writers
# A control socket's bind would replace the file (or refuse it as not a socket after the output
# was opened): its path is written too.
refused_both control_input 'control(' bg.pcap 'pcap(bg.pcap) -> m: merge -> file(o.pcap); control(bg.pcap) -> m'
refused_both control_output 'file(|control(' o.pcap 'pcap(bg.pcap) -> m: merge -> file(o.pcap); control(o.pcap) -> m'
# An existing output (an earlier run's) as its own labels: the same inode, not only the same name.
refused_both labels_existing_output 'file(|labels=' prev.pcap 'pcap(bg.pcap) -> file(prev.pcap, labels=prev.pcap)'
# Not created yet, spelled two ways.
refused_both labels_output_spelled 'file(|labels=' o.pcap 'pcap(bg.pcap) -> file(o.pcap, labels=./sub/../o.pcap)'
# Through a symlink and a hard link to the input.
refused_both labels_symlink 'labels=' link.pcap 'pcap(bg.pcap) -> file(o.pcap, labels=link.pcap)'
refused_both output_hardlink 'file(' hard.pcap 'pcap(bg.pcap) -> file(hard.pcap)'
# --stats-json over the output or the labels.
refused stats_output usage o.pcap run -q --stats-json o.pcap -e 'pcap(bg.pcap) -> file(o.pcap)'
refused stats_labels usage o.csv \
  run -q --stats-json ./sub/../o.csv -e 'pcap(bg.pcap) -> file(o.pcap, labels=o.csv)'

# ---- standard input and output (issue 11, item 2): `-` is the file the shell redirected, and
# so are /dev/stdin, /dev/stdout, /dev/fd/N and /proc/self/fd/N.
stdin_from=bg.pcap names='standard input' refused_both stdin_output 'file(' bg.pcap 'pcap(-) -> file(bg.pcap)'
stdin_from=bg.pcap names='standard input' refused_both stdin_labels 'labels=' /dev/stdin \
  'pcap(-) -> file(o.pcap, labels=/dev/stdin)'
stdin_from=bg.pcap names='standard input' refused_both stdin_fd 'file(' /proc/self/fd/0 'pcap(-) -> file(/proc/self/fd/0)'
stdout_to=bg.pcap names='standard output' refused_both stdout_input 'file(' bg.pcap 'pcap(bg.pcap) -> file(-)'
stdout_to=prev.pcap refused_both stdout_labels 'labels=' /dev/fd/1 \
  'pcap(bg.pcap) -> file(prev.pcap, labels=/dev/fd/1)'
stdout_to=bg.pcap refused stats_stdout usage /dev/stdout run -q --stats-json /dev/stdout -e 'pcap(bg.pcap) -> file(o.pcap)'
# Standard input can be read by one source only (issue 11, item 19): the second is refused, not
# misread as "not a pcap file".
stdin_from=bg.pcap names='standard input' refused_both stdin_twice '; pcap(' "'-'" \
  'pcap(-) -> m: merge -> file(o.pcap); pcap(-, shift=1s) -> m'

# ---- runs that must still work: two reads of one file, every written path distinct, /dev/null
# written twice (a character device: nothing to destroy).
fresh || exit 1
before_bg=$(sha256sum bg.pcap)
timeout "$limit" "$veipipe" run -q --stats-json ok.json \
  -e 'pcap(bg.pcap) -> m: merge(end=all) -> file(ok.pcap, labels=ok.csv)
      pcap(link.pcap, shift=1s) -> m; control(ok.sock) -> m' \
  2>"$tmp/logs/ok.err"
rc=$?
if ((rc == 0)) && [[ -s ok.pcap && -s ok.csv && -s ok.json && ! -e ok.sock ]]; then pass; else
  fail "distinct paths, one input read twice: exit 0, output, labels and statistics written" "exit status: $rc" \
    "$(head -n 5 "$tmp/logs/ok.err")"
fi
if [[ $(sha256sum bg.pcap) == "$before_bg" ]]; then pass; else fail "distinct paths: bg.pcap as it was"; fi
timeout "$limit" "$veipipe" run -q -e 'pcap(bg.pcap) -> file(/dev/null, labels=/dev/null)' 2>"$tmp/logs/null.err"
rc=$?
if ((rc == 0)); then pass; else
  fail "/dev/null as output and labels: exit 0" "exit status: $rc" "$(head -n 5 "$tmp/logs/null.err")"
fi

# Standard input read once, written elsewhere: the output holds every record of the input.
fresh || exit 1
timeout "$limit" "$veipipe" run -q -e 'pcap(-) -> file(o.pcap)' <bg.pcap 2>"$tmp/logs/stdin.err"
rc=$?
if ((rc == 0)) && cmp -s bg.pcap o.pcap; then pass; else
  fail "pcap(-) < bg.pcap -> file(o.pcap): exit 0, o.pcap the same bytes" "exit status: $rc" "$(head -n 5 "$tmp/logs/stdin.err")"
fi

summary paths_test
