#!/usr/bin/env bash
# The manual pages the build assembled (cmake/man.cmake) and `--version`: every page is clean under
# `mandoc -T lint -W warning` and renders with man-db's `man -l`; veipipe-stages(7) documents
# exactly the stages and parameters `veipipe stages` prints; veipipe(1) and veigen(1) name every
# option the commands' --help lists; vei(3) names every constant and function of pipeline/vei.h;
# `veipipe --version` gives the libpcap that tcpdump reports.
#
# Usage: tests/man_test.sh path/to/veipipe path/to/veigen path/to/build/man path/to/pipeline/vei.h
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/veigen path/to/build/man path/to/vei.h"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
man_dir=$(realpath "${3:?$usage}") || exit 2
vei_h=$(realpath "${4:?$usage}") || exit 2
require man_test mandoc man col tcpdump awk diff grep "$veipipe" "$veigen"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/man_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

pages=(veipipe.1 veigen.1 vei.3 veipipe-stages.7)
for page in "${pages[@]}"; do
  file=$man_dir/$page
  [[ -s $file ]] || { fail "$page: not built in $man_dir"; continue; }
  if lint=$(mandoc -T lint -W warning "$file" 2>&1) && [[ -z $lint ]]; then pass; else fail "$page: mandoc -T lint -W warning" "$lint"; fi
  # man-db formats it with groff; a page it cannot read would print no NAME section.
  rendered=$(MANWIDTH=80 MAN_KEEP_FORMATTING=0 man -l "$file" 2>"$tmp/man.err" | col -b 2>/dev/null)
  if [[ $rendered == *NAME* && $rendered == *"SEE ALSO"* && ! -s $tmp/man.err ]]; then pass
  else fail "$page: man -l" "$(head -3 "$tmp/man.err")"; fi
done

# The sections of a page: the lines of mdoc FILE between `.Sh NAME` and the next `.Sh`.
section() { awk -v name="$2" '/^\.Sh / { on = ($0 == ".Sh " name); next } on' "$1"; }

# veipipe-stages(7): the stages, in the registry's order, and each one's parameters.
stages_page=$man_dir/veipipe-stages.7
"$veipipe" stages | awk '/^[a-z]+ \(/ { print $1 }' >"$tmp/registered"
section "$stages_page" STAGES | awk '/^\.Ss / { print $2 }' >"$tmp/documented"
if [[ -s $tmp/registered ]] && diff "$tmp/registered" "$tmp/documented" >"$tmp/diff"; then pass
else fail "veipipe-stages(7) does not list the registered stages" "$(cat "$tmp/diff")"; fi
bad_params=''
while read -r stage; do
  "$veipipe" stages "$stage" | awk 'NR > 2 { print $1 }' >"$tmp/params"
  section "$stages_page" STAGES | awk -v s="$stage" '/^\.Ss / { on = ($2 == s); next } on && /^\.It Cm / { print $3 }' >"$tmp/page_params"
  diff -q "$tmp/params" "$tmp/page_params" >/dev/null || bad_params+=" $stage"
done <"$tmp/registered"
if [[ -z $bad_params ]]; then pass; else fail "veipipe-stages(7): parameters differ from 'veipipe stages' for:$bad_params"; fi

# veipipe(1) and veigen(1): every long option of every command's --help, as `Fl -NAME`.
options_in() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
missing=''
for command in run check graph stages inject; do
  for option in $("$veipipe" "$command" --help | options_in); do
    grep -q -- "^\.It .*Fl ${option#-}\b" "$man_dir/veipipe.1" || missing+=" veipipe $command $option"
  done
done
for option in $("$veigen" --help | options_in); do
  grep -q -- "^\.It .*Fl ${option#-}\b" "$man_dir/veigen.1" || missing+=" veigen $option"
done
if [[ -z $missing ]]; then pass; else fail "options missing from the pages:$missing"; fi
for command in run check graph stages inject; do
  grep -q "^\.Cm $command\$" "$man_dir/veipipe.1" || missing+=" $command"
done
if [[ -z $missing ]]; then pass; else fail "veipipe(1) SYNOPSIS lacks:$missing"; fi

# vei(3): every #define, event and function of vei.h.
names=$(grep -oE '^#define (LIB|BAD|THREAD|FAILED|NO|EVENT)_[A-Z_]+' "$vei_h" | awk '{ print $2 }'
        grep -oE '^ *VEI_[A-Z_]+ =' "$vei_h" | tr -d ' ='
        grep -oE '^(int|void) [a-z_]+\(' "$vei_h" | awk '{ print $2 }' | tr -d '(')
count=0 missing=''
for name in $names; do
  count=$((count + 1))
  case $name in
    EVENT_*) grep -q "^\.It Dv VEI_[A-Z_]* Pq $(awk -v n="$name" '$2 == n { print $3 }' "$vei_h")\$" "$man_dir/vei.3" ;;
    [a-z]*) grep -q "^\.Fn $name " "$man_dir/vei.3" ;;
    *) grep -q "Dv $name\b" "$man_dir/vei.3" ;;
  esac || missing+=" $name"
done
# 10 error codes, 13 event numbers, 13 events, 4 functions.
if ((count == 40)) && [[ -z $missing ]]; then pass; else fail "vei(3): $count names of vei.h, missing:$missing"; fi

# --version: veipipe's, then the libpcap tcpdump reports (the same shared library), oneTBB, fmt.
version=$("$veipipe" --version) || fail "veipipe --version exited $?"
tcpdump_pcap=$(tcpdump --version 2>&1 | grep '^libpcap version')
mapfile -t lines <<<"$version"
if ((${#lines[@]} == 4)) && [[ ${lines[0]} =~ ^veipipe\ [0-9]+\.[0-9]+\.[0-9]+$ && ${lines[1]} == "$tcpdump_pcap" &&
  ${lines[2]} =~ ^oneTBB\ 20[0-9]{2}\.[0-9]+.*\(built\ with\ 20[0-9]{2}\.[0-9]+.*\)$ && ${lines[3]} =~ ^fmt\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
then pass; else fail "veipipe --version" "$version" "tcpdump: $tcpdump_pcap"; fi
# The version in the pages is the program's.
grep -q "^\.Os veipipe ${lines[0]#veipipe }\$" "$man_dir/veipipe.1" && pass || fail "veipipe.1: .Os is not ${lines[0]}"
version=$("$veigen" --version) || fail "veigen --version exited $?"
[[ $version == "veigen (${lines[0]})"$'\n'"${lines[3]}" ]] && pass || fail "veigen --version" "$version"
# The hidden generator refuses a part it does not have, as a usage error.
"$veipipe" --generate=nothing >/dev/null 2>"$tmp/err"
status=$?
((status == 2)) && grep -q "no part 'nothing'" "$tmp/err" && pass || fail "veipipe --generate=nothing: exit $status" "$(cat "$tmp/err")"

summary man_test
