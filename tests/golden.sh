#!/usr/bin/env bash
# Golden tests per stage, in the spirit of Click's .testie files: tests/golden/STAGE/NAME.case are
# small cases, each a description and the output it must give, read back by independent decoders
# (tshark for the records, od for the pcap file header). Only the command line is used: veipipe,
# veigen and the peers, never the engine's internals. tests/golden/README.md describes the format.
#
# Usage: tests/golden.sh path/to/veipipe path/to/veigen path/to/corpus-dir [CASE...]
#   CASE: a case file, or a pattern matched against STAGE/NAME (`merge/*`, `*/errors*`); default all.
# Environment:
#   GOLDEN_UPDATE=1  rewrite the %expect-* sections of the cases run with what they now give (the
#                    %expect-status too); lines with `*` wildcards that still match are kept. Read
#                    every rewritten expectation before committing it.
#   GOLDEN_KEEP=1    keep the temporary directories (their path is printed).
#   GOLDEN_TIMEOUT=S seconds a case may take (default 60).
#   GOLDEN_LISTINGS=0 skip the %expect-listing sections (tshark's reading of the output), for a
#                    sanitizer build whose listings the plain build's run has checked: status, stderr,
#                    stdout and labels are still compared.
# Ends with the line `N passed, M failed`; exit status 1 when a case failed.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail

usage="usage: $0 path/to/veipipe path/to/veigen path/to/corpus-dir [CASE...]"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
corpus=$(realpath "${3:?$usage}") || exit 2
shift 3
update=${GOLDEN_UPDATE:-0}
listings=${GOLDEN_LISTINGS:-1}
if [[ $update == 1 && $listings != 1 ]]; then echo "golden: GOLDEN_UPDATE=1 needs the listings (GOLDEN_LISTINGS=1)" >&2; exit 2; fi
keep=${GOLDEN_KEEP:-0}
case_limit=${GOLDEN_TIMEOUT:-60} # seconds a case may take, setup and run together

for tool in tshark tcpdump editcap capinfos od diff timeout awk "$veipipe" "$veigen"; do
  command -v "$tool" >/dev/null || { echo "golden: $tool not found (scripts/setup.sh installs the tools)" >&2; exit 1; }
done
[[ -f $corpus/MANIFEST.tsv ]] || { echo "golden: $corpus is not the corpus directory" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX") || exit 1
if [[ $keep == 1 ]]; then trap 'echo "golden: kept $root"' EXIT; else trap 'rm -rf "$root"' EXIT; fi
trap 'exit 130' INT
trap 'exit 143' TERM
# Cases call `veipipe` and `veigen` by name.
mkdir -p "$root/bin" "$root/wireshark"
ln -s "$veipipe" "$root/bin/veipipe"
ln -s "$veigen" "$root/bin/veigen"
# tshark with its default preferences, whatever the user's profile says.
export WIRESHARK_CONFIG_DIR=$root/wireshark

# ---------------------------------------------------------------------------------------------
# The record listing: one header line from the pcap file header (read with od); for a pcapng, a
# line per interface and one per packet comment (capinfos, tshark); then a line per record from
# tshark, tab-separated, `-` for a field the record does not have:
#   no  time  len  caplen  eth src>dst  protocols  ip src>dst  ip-checksum  l4  l4-checksum
# time has 6 decimals in a microsecond file, 9 in a nanosecond one; checksums are tshark's
# verdicts (good, BAD, unverified: tshark could not check, e.g. a packet cut short). TCP sequence
# analysis is off, so that a packet seen again (a loop's second pass) is dissected as the first time.
listing() { # listing FILE
  local f=$1
  if [[ ! -e $f ]]; then echo "# $f: no such file"; return; fi
  local -a h
  read -r -a h < <(od -An -tx1 -N24 -v "$f" | tr '\n' ' ')
  local magic="${h[0]:-}${h[1]:-}${h[2]:-}${h[3]:-}" kind digits=9 le=1
  case $magic in
    d4c3b2a1) kind="pcap us LE" digits=6 ;;
    4d3cb2a1) kind="pcap ns LE" ;;
    a1b2c3d4) kind="pcap us BE" digits=6 le=0 ;;
    a1b23c4d) kind="pcap ns BE" le=0 ;;
    0a0d0d0a) kind="pcapng" ;;
    *) kind="not a capture (magic '$magic')" ;;
  esac
  if [[ $kind == "pcap "* ]] && ((${#h[@]} == 24)); then
    local snaplen linktype
    if ((le)); then
      snaplen=$((16#${h[19]}${h[18]}${h[17]}${h[16]})) linktype=$((16#${h[23]}${h[22]}${h[21]}${h[20]}))
    else
      snaplen=$((16#${h[16]}${h[17]}${h[18]}${h[19]})) linktype=$((16#${h[20]}${h[21]}${h[22]}${h[23]}))
    fi
    kind="$kind, snaplen $snaplen, linktype $linktype"
  fi
  local fields err
  err=$(mktemp "$root/tshark.XXXXXX")
  fields=$(tshark -r "$f" -n -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -o tcp.analyze_sequence_numbers:FALSE \
    -T fields -E separator=/t -e frame.number -e frame.time_epoch -e frame.len -e frame.cap_len \
    -e eth.src -e eth.dst -e frame.protocols -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e ip.checksum.status \
    -e tcp.srcport -e tcp.dstport -e tcp.checksum.status -e udp.srcport -e udp.dstport -e udp.checksum.status \
    -e icmp.type -e icmp.code -e icmp.ident -e icmp.seq -e icmp.checksum.status 2>"$err")
  echo "# $f: $kind, records $(if [[ -z $fields ]]; then echo 0; else wc -l <<<"$fields"; fi)"
  if [[ $kind == pcapng ]]; then
    capinfos -M "$f" 2>/dev/null | awk -F' = ' '
      function flush() { if (n != "") print "# interface " n ": " name ", " desc ", " encap ", snaplen " snap ", " prec ", packets " pkts }
      /^Interface #/ { flush(); n = $0; gsub(/[^0-9]/, "", n); name = desc = "-"; next }
      /^ +Name = / { name = $2 } /^ +Description = / { desc = $2 } /^ +Encapsulation = / { encap = $2 }
      /^ +Capture length = / { snap = $2 } /^ +Time precision = / { prec = $2 } /^ +Number of packets = / { pkts = $2 }
      END { flush() }'
    tshark -r "$f" -n -T fields -e frame.number -e frame.comment 2>/dev/null | awk -F '\t' '$2 != "" { print "# comment on " $1 ": " $2 }'
  fi
  printf '#no\ttime\tlen\tcaplen\teth src>dst\tprotocols\tip src>dst\tip-checksum\tl4\tl4-checksum\n'
  [[ -n $fields ]] && awk -F '\t' -v digits="$digits" '
    function v(x) { return x == "" ? "-" : x }
    function pair(a, b) { return (a == "" && b == "") ? "-" : v(a) ">" v(b) }
    function status(s,   n, i, parts, out) { # "1" or "1,2" (one per occurrence) as words
      if (s == "") return "-"
      n = split(s, parts, ",")
      for (i = 1; i <= n; i++)
        out = out (i > 1 ? "," : "") (parts[i] == "1" ? "good" : parts[i] == "0" ? "BAD" : "unverified")
      return out
    }
    {
      split($2, t, "."); time = t[1] "." substr(t[2], 1, digits)
      ip = ($8 != "" || $9 != "") ? pair($8, $9) : pair($10, $11)
      if ($13 != "") { l4 = "tcp " $13 ">" $14; l4s = $15 }
      else if ($16 != "") { l4 = "udp " $16 ">" $17; l4s = $18 }
      else if ($19 != "") { l4 = "icmp " $19 "/" $20 (($21 != "") ? " id " $21 " seq " $22 : ""); l4s = $23 }
      else { l4 = "-"; l4s = "" }
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", $1, time, $3, $4, pair($5, $6), v($7), ip, status($12), l4, status(l4s)
    }' <<<"$fields"
  # tshark's complaints (a file cut short...) belong to the listing; its warning about root does not.
  grep -v -e '^Running as user' -e '^ *$' "$err" | sed 's/^/# tshark: /'
  rm -f "$err"
}

# ---------------------------------------------------------------------------------------------
# Matching. An expected line may hold `*` wildcards (any text, possibly none); every other
# character is literal. `exact` mode: as many lines as expected, each matching the one in its
# place. `lines` mode: the expected lines appear in this order among the actual ones, others may
# come between (for stderr and stdout).
#
# align MODE EXPECTED ACTUAL: prints ACTUAL with every line that an expected line matches replaced
# by that expected line (wildcards included), then returns 0 when everything matched. A diff of
# EXPECTED against this shows only the real differences, and GOLDEN_UPDATE writes it back.
align() {
  awk -v mode="$1" -v expected="$2" '
    function rx(p,   i, c, r) {
      r = "^"
      for (i = 1; i <= length(p); i++) {
        c = substr(p, i, 1)
        if (c == "*") r = r ".*"
        else if (index("\\.[]()^$+?{}|/", c)) r = r "\\" c
        else r = r c
      }
      return r "$"
    }
    function matches(line, p) { return index(p, "*") ? (line ~ rx(p)) : (line == p) }
    BEGIN { while ((getline line <expected) > 0) want[++ne] = line }
    { act[++na] = $0 }
    END {
      ok = 1
      if (mode == "exact") {
        for (i = 1; i <= na; i++) {
          if (i <= ne && matches(act[i], want[i])) print want[i]
          else { print act[i]; ok = 0 }
        }
        if (ne != na) ok = 0
      } else {
        j = 1
        for (i = 1; i <= na; i++) {
          if (j <= ne && matches(act[i], want[j])) { print want[j]; j++ }
          else print act[i]
        }
        if (j <= ne) ok = 0
      }
      exit !ok
    }' "$3"
}

# ---------------------------------------------------------------------------------------------
# Case files: sections start with a line `%name [argument]` and run to the next one; anything
# before the first is a comment. Trailing blank lines of a section are dropped.

# parse CASEFILE DIR: writes each section's body to DIR/sections/INDEX and lists the sections
# (INDEX NAME ARGUMENT) in DIR/sections/index, in file order.
parse() {
  mkdir -p "$2/sections"
  awk -v out="$2/sections" '
    function flush(   k) {
      if (!n) return
      while (nl > 0 && body[nl] ~ /^[ \t]*$/) nl--
      f = out "/" n
      printf "" >f
      for (k = 1; k <= nl; k++) print body[k] >f
      close(f)
    }
    /^%[a-z-]+( |$)/ {
      flush(); n++; nl = 0
      name = $1; sub(/^%/, "", name)
      arg = $0; sub(/^%[a-z-]+ */, "", arg)
      print n, name, arg >(out "/index")
      next
    }
    n { body[++nl] = $0 }
    END { flush(); if (!n) printf "" >(out "/index") }' "$1"
}

passed=0 failed=0 skipped=0
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }
failures=()

report_fail() { # report_fail CASE WHY [DETAIL-FILE...]
  local name=$1 why=$2
  shift 2
  failed=$((failed + 1))
  failures+=("$name")
  echo "FAIL $name: $why"
  local f
  for f in "$@"; do [[ -s $f ]] && sed 's/^/    /' "$f"; done
}

run_case() { # run_case CASEFILE NAME
  local file=$1 name=$2
  local t0=$EPOCHREALTIME
  local dir=$root/cases/${name//\//.}
  mkdir -p "$dir/work"
  parse "$file" "$dir"
  local idx sname arg
  local -A body=() args=()
  local -a order=()
  local status_idx='' info=''
  while read -r idx sname arg; do
    case $sname in
      info | setup | description | run | cleanup | expect-status | expect-listing | expect-stderr | expect-stdout | expect-labels) ;;
      *)
        report_fail "$name" "unknown section %$sname"
        return
        ;;
    esac
    order+=("$idx")
    body[$idx]=$dir/sections/$idx
    args[$idx]="$sname${arg:+ $arg}"
    [[ $sname == info ]] && info=${arg:-$(head -n1 "$dir/sections/$idx")}
    [[ $sname == expect-status ]] && status_idx=$idx
  done <"$dir/sections/index"
  [[ -n $info ]] || { report_fail "$name" "no %info"; return; }

  # The script the case runs: setup (any failing line stops it), then run (its output and status
  # kept), and the cleanup on every exit.
  local work=$dir/work
  bodies() { for idx in "${order[@]}"; do [[ ${args[$idx]} == "$1" ]] && cat "${body[$idx]}"; done; }
  {
    cat <<'SH'
cd "$GOLDEN_WORK" || exit 99
skip() { echo "$*" >"$GOLDEN_DIR/skipped"; exit 77; }
__cleanup() {
  set +e
SH
    bodies cleanup
    cat <<'SH'
}
trap '__cleanup >>"$GOLDEN_DIR/cleanup.log" 2>&1' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
set -eE
trap 'echo "setup failed at: $BASH_COMMAND" >>"$GOLDEN_DIR/setup.log"' ERR
{
SH
    bodies setup
    cat <<'SH'
:
} >"$GOLDEN_DIR/setup.log" 2>&1
trap - ERR
set +eE
{
SH
    if grep -q '^[0-9]* run *$' "$dir/sections/index"; then
      bodies run
    else
      # shellcheck disable=SC2016 # expanded by the case's shell
      echo 'veipipe run -q -e "$(cat description)"'
    fi
    cat <<'SH'
} >"$GOLDEN_DIR/stdout" 2>"$GOLDEN_DIR/stderr"
echo $? >"$GOLDEN_DIR/status"
SH
  } >"$dir/case.sh"
  for idx in "${order[@]}"; do [[ ${args[$idx]} == description ]] && cp "${body[$idx]}" "$work/description"; done

  GOLDEN_WORK=$work GOLDEN_DIR=$dir CORPUS=$corpus PATH=$root/bin:$PATH \
    timeout "$case_limit" bash "$dir/case.sh" </dev/null >"$dir/case.log" 2>&1
  local rc=$?
  if ((rc == 77)) && [[ -f $dir/skipped ]]; then
    skipped=$((skipped + 1))
    echo "skip $name: $(cat "$dir/skipped")"
    return
  fi
  if [[ ! -f $dir/status ]]; then
    local why="the setup failed (exit $rc)"
    ((rc == 124)) && why="killed after $case_limit s"
    [[ -f $dir/stderr ]] && why="$why; stderr of the run:"
    report_fail "$name" "$why" "$dir/setup.log" "$dir/case.log" "$dir/stderr"
    return
  fi
  ((rc == 124)) && echo "killed after $case_limit s" >>"$dir/stderr"

  # Compare every expectation, collecting the diffs; GOLDEN_UPDATE writes the aligned output back.
  local ok=1 want got mode out
  local diffs=$dir/diffs
  : >"$diffs"
  local status
  status=$(cat "$dir/status")
  want=0
  [[ -n $status_idx ]] && want=${args[$status_idx]#expect-status }
  [[ $want =~ ^[0-9]+$ ]] || { report_fail "$name" "%expect-status needs a number, got '$want'"; return; }
  if [[ $status != "$want" ]]; then
    ok=0
    echo "exit status $status, expected $want" >>"$diffs"
  fi
  for idx in "${order[@]}"; do
    read -r sname arg <<<"${args[$idx]}"
    case $sname in
      expect-listing)
        [[ $listings == 1 ]] || continue
        got=$dir/got.$idx mode=exact; (cd "$work" && listing "${arg:-out.pcap}") >"$got" ;;
      expect-labels)
        got=$dir/got.$idx mode=exact
        if [[ -e $work/${arg:-out.csv} ]]; then cp "$work/${arg:-out.csv}" "$got"; else echo "# ${arg:-out.csv}: no such file" >"$got"; fi
        ;;
      expect-stderr) got=$dir/stderr mode=lines ;;
      expect-stdout) got=$dir/stdout mode=lines ;;
      *) continue ;;
    esac
    out=$dir/aligned.$idx
    if ! align "$mode" "${body[$idx]}" "$got" >"$out"; then
      ok=0
      {
        [[ $mode == lines ]] && echo "%$sname: these lines must appear in this order (* = any text); - missing or unmatched, + other output"
        diff -u --label "expected %${args[$idx]}" --label "actual" "${body[$idx]}" "$out"
      } >>"$diffs"
    fi
  done

  if [[ $update == 1 ]]; then
    rewrite "$file" "$dir" "$status"
  fi
  if ((ok)); then
    passed=$((passed + 1))
    echo "ok   $name ($(elapsed "$t0"))"
  elif [[ $update == 1 ]]; then
    passed=$((passed + 1))
    echo "upd  $name ($(elapsed "$t0"))"
  else
    report_fail "$name" "$info" "$diffs"
    if [[ $status != "$want" ]] || ! grep -q '^%expect-stderr' "$file"; then
      [[ -s $dir/stderr ]] && { echo "    stderr of the run:"; sed 's/^/    | /' "$dir/stderr"; }
    fi
  fi
}

# rewrite CASEFILE DIR STATUS: the case file with its expectations replaced by what the
# run gave (aligned, so matching wildcard lines stay). Stderr and stdout expectations are replaced
# by the whole output: trim them to the lines that matter.
rewrite() {
  local file=$1 dir=$2 status=$3
  local new=$dir/rewritten idx sname arg out
  {
    # The comment before the first section, as it was.
    awk '/^%[a-z-]+( |$)/ { exit } { print }' "$file"
    while read -r idx sname arg; do
      case $sname in
        expect-status) echo "%expect-status $status" ;;
        *) echo "%$sname${arg:+ $arg}" ;;
      esac
      case $sname in
        expect-listing | expect-labels) cat "$dir/aligned.$idx" ;;
        expect-stderr | expect-stdout)
          # Kept while it still matches; an empty one (a new case) or one that no longer matches
          # becomes the whole output, to be trimmed by hand.
          out=$dir/${sname#expect-}
          if [[ -s $dir/sections/$idx ]] && align lines "$dir/sections/$idx" "$out" >/dev/null; then cat "$dir/sections/$idx"; else cat "$out"; fi
          ;;
        expect-status) ;;
        *) cat "$dir/sections/$idx" ;;
      esac
      echo
    done <"$dir/sections/index"
  } >"$new"
  # No blank line at the very end.
  awk '{ l[NR] = $0 } END { n = NR; while (n > 0 && l[n] == "") n--; for (i = 1; i <= n; i++) print l[i] }' "$new" >"$new.trim"
  cmp -s "$new.trim" "$file" || cp "$new.trim" "$file"
}

# ---------------------------------------------------------------------------------------------
cd "$tests_dir/golden" || exit 1
mapfile -t all < <(find . -name '*.case' | sed 's|^\./||; s|\.case$||' | LC_ALL=C sort)
selected=()
if (($# == 0)); then
  selected=("${all[@]}")
else
  for pattern in "$@"; do
    pattern=${pattern#"$tests_dir/golden/"}
    pattern=${pattern#tests/golden/}
    pattern=${pattern%.case}
    for c in "${all[@]}"; do
      # shellcheck disable=SC2053 # a glob on purpose
      [[ $c == $pattern ]] && selected+=("$c")
    done
  done
  ((${#selected[@]})) || { echo "golden: no case matches $*" >&2; exit 2; }
fi

start=$SECONDS
for c in "${selected[@]}"; do
  run_case "$tests_dir/golden/$c.case" "$c"
done
((skipped)) && echo "golden: $skipped skipped (see above why)"
((failed)) && echo "golden: failed: ${failures[*]}"
echo "golden: $((passed + failed + skipped)) cases in $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
((failed == 0))
