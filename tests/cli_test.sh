#!/usr/bin/env bash
# End-to-end tests of the `veipipe` command on real files, checked against real peers from Debian
# (mergecap, tcpdump, tshark, capinfos).
#
# Usage: tests/cli_test.sh path/to/veipipe path/to/veigen path/to/corpus-dir
#
# With VEIPIPE_LARGE_TEST=1 only the large-file section runs: a generated trace over 4 GiB goes
# through to /dev/null and to a file on disk (needs 12 GiB free; skipped with a message otherwise).
# Everything is written under one `mktemp -d` directory that is removed on every exit path.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/veigen path/to/corpus-dir"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
corpus=$(realpath "${3:?$usage}") || exit 2
large=${VEIPIPE_LARGE_TEST:-0}

require cli_test mergecap capinfos tshark tcpdump cmp timeout awk od "$veipipe" "$veigen"
[[ -f $corpus/MANIFEST.tsv ]] || { echo "cli_test: $corpus is not the corpus directory" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/cli_test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Relative output paths in descriptions (and anything a broken run might create) land in $dir.
cd "$dir" || exit 1

limit=120 # seconds allowed to every veipipe/veigen run: a hang fails the check instead of blocking

# ---------------------------------------------------------------------------------------------
# Reporting

note() { printf 'note: %s\n' "$*" >&2; }

# The last command run through `run`: its command line, exit status and output files.
last_cmd='' last_label='' rc=0

# Context lines describing the last run, for failure messages.
context() {
  local err=$dir/$last_label.err
  printf '%s\n' "command: $last_cmd" "exit status: $rc"
  if [[ -s $err ]]; then
    echo "stderr:"
    head -n 12 "$err" | sed 's/^/  | /'
  fi
}
fail_ctx() { # fail_ctx WHAT [EXTRA-LINE...]: a failure with the last run's context
  local what=$1
  shift
  local -a lines=("$@")
  mapfile -t -O "${#lines[@]}" lines < <(context)
  fail "$what" "${lines[@]}"
}

# run LABEL CMD...: runs CMD in $dir with a time limit; stdout to $dir/LABEL.out, stderr to
# $dir/LABEL.err; sets rc.
run() {
  last_label=$1
  shift
  last_cmd=$(printf '%q ' "$@")
  timeout "$limit" "$@" >"$dir/$last_label.out" 2>"$dir/$last_label.err"
  rc=$?
  ((rc == 124)) && echo "cli_test: killed after ${limit} s" >>"$dir/$last_label.err"
  return 0
}
vp() { # vp LABEL ARGS...: runs veipipe
  local label=$1
  shift
  run "$label" "$veipipe" "$@"
}
gen() { # gen FILE ARGS...: writes a trace with veigen; a failure here is a failed check
  local out=$1
  shift
  run "gen.$(basename "$out")" "$veigen" -o "$out" "$@"
  if ((rc != 0)) || [[ ! -s $out ]]; then
    fail_ctx "veigen could not write $out"
    return 1
  fi
  return 0
}
# The packet count veigen reported for its last run.
gen_count() { sed -n 's/^veigen: wrote \([0-9]*\) packets.*/\1/p' "$dir/$last_label.err"; }

expect_rc() { # expect_rc WANT WHAT
  if [[ $rc == "$1" ]]; then pass; else fail_ctx "$2: exit status $rc, expected $1"; fi
}
expect_eq() { # expect_eq WHAT EXPECTED GOT
  if [[ $2 == "$3" ]]; then pass; else fail "$1" "expected: $2" "got:      $3"; fi
}
expect_lines() { # expect_lines WHAT EXPECTED-LISTING GOT-LISTING: equal multi-line listings
  if [[ $2 == "$3" ]]; then
    pass
  else
    fail "$1" "expected $(wc -l <<<"$2") lines, got $(wc -l <<<"$3")" "first difference: $(first_diff "$2" "$3")"
  fi
}
expect_grep() { # expect_grep WHAT EXTENDED-REGEX FILE: FILE (an output of the last run) matches
  if grep -qE -- "$2" "$3"; then pass; else fail_ctx "$1: no line matches /$2/ in $(basename "$3")"; fi
}
expect_no_file() { # expect_no_file WHAT PATH
  if [[ ! -e $2 ]]; then pass; else fail_ctx "$1: $2 exists"; fi
}
expect_true() { # expect_true WHAT CMD...: CMD succeeds (its stderr is shown on failure)
  local what=$1
  shift
  local out
  if out=$("$@" 2>&1); then pass; else fail "$what" "command: $*" "${out:0:2000}"; fi
}

# ---------------------------------------------------------------------------------------------
# Reading captures with the peers

# tshark warns on stderr when run as root; only its data output matters here.
ts() { tshark "$@" 2>/dev/null; }
count() { capinfos -c -M "$1" 2>/dev/null | awk '/Number of packets/ {print $NF}'; }
# "time length" per packet, read once per file by tshark (slow to start) and kept in $dir/listings.
# Files are never rewritten under the same name, so the listing stays valid.
listing() {
  local key
  key=$dir/listings/$(realpath "$1" | tr / _)
  [[ -f $key ]] || { mkdir -p "$dir/listings" && ts -r "$1" -T fields -e frame.time_epoch -e frame.len >"$key"; }
  cat "$key"
}
# Timestamps ("seconds.nanoseconds", one per packet), optionally of packets of one frame length.
times() { listing "$1" | cut -f1; }
times_len() { # times_len FILE LEN [!]: times of the packets whose frame length is (or with ! is not) LEN
  listing "$1" | awk -v len="$2" -v neg="${3:-}" '(neg == "!") != ($2 == len) {print $1}'
}
# Packet identities for comparing two captures as sets: time, length and header fields/checksums.
records() {
  ts -r "$1" -T fields -e frame.time_epoch -e frame.len -e eth.src -e eth.dst -e ip.src -e ip.dst -e ip.id \
    -e ip.checksum -e tcp.srcport -e tcp.dstport -e tcp.seq_raw -e tcp.checksum -e udp.srcport -e udp.checksum
}
# Adds SECONDS and NANOSECONDS (integers, may be negative) to every "s.fraction" timestamp on stdin,
# exactly: a double cannot hold nanoseconds since 1970.
add_time() {
  awk -v os="$1" -v on="$2" '{
    split($1, t, "."); s = t[1] + os; n = substr(t[2] "000000000", 1, 9) + on
    while (n < 0) { n += 1000000000; s-- }
    while (n >= 1000000000) { n -= 1000000000; s++ }
    printf "%d.%09d\n", s, n }'
}
# Nanoseconds since the first timestamp on stdin, one line per timestamp.
rel_ns() {
  awk '{ split($1, t, "."); s = t[1]; n = substr(t[2] "000000000", 1, 9) + 0
         if (NR == 1) { s0 = s; n0 = n }
         printf "%.0f\n", (s - s0) * 1e9 + (n - n0) }'
}
# Prints nothing when the timestamps on stdin never decrease, else the first place they do.
first_decrease() {
  awk '{ split($1, t, "."); s = t[1] + 0; n = substr(t[2] "000000000", 1, 9) + 0
         if (NR > 1 && (s < ps || (s == ps && n < pn))) { printf "packet %d: %s after %s\n", NR, $1, prev; exit }
         ps = s; pn = n; prev = $1 }'
}
# How many packets share their timestamp with the packet before them.
equal_neighbours() { awk 'NR > 1 && $1 == prev {k++} {prev = $1} END {print k + 0}'; }
first_diff() { # first_diff EXPECTED-LISTING GOT-LISTING: where two listings part, for context
  local n
  n=$(cmp <(printf '%s\n' "$1") <(printf '%s\n' "$2") 2>&1 | sed -n 's/.*line \([0-9]*\).*/\1/p; s/.*EOF on \([^ ]*\).*/end of \1/p')
  [[ $n =~ ^[0-9]+$ ]] || { printf 'one listing is a prefix of the other (%s)' "$n"; return; }
  printf 'line %s: expected [%s] got [%s]' "$n" "$(sed -n "${n}p" <<<"$1")" "$(sed -n "${n}p" <<<"$2")"
}
le32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; } # le32 FILE OFFSET (this host is little-endian)
magic() { od -An -tx4 -N4 "$1" | tr -d ' '; }

# Outputs that tcpdump must be able to read (section 7).
outputs=()
valid_output() { outputs+=("$1"); }

# same_pcap WHAT OUT REF: byte-identical files; a header differing only in snaplen is accepted and said.
same_pcap() {
  local what=$1 out=$2 ref=$3
  if cmp -s "$out" "$ref"; then
    pass
  elif cmp -s -n 16 "$out" "$ref" && cmp -s -i 20 "$out" "$ref"; then
    pass
    note "$what: headers differ only in snaplen (veipipe $(le32 "$out" 16), reference $(le32 "$ref" 16)); identical from byte 24 on"
  else
    fail "$what" "$(cmp "$out" "$ref" 2>&1)" \
      "sizes: $(stat -c %s "$out") vs $(stat -c %s "$ref"); packets: $(count "$out") vs $(count "$ref")" \
      "first differing packet (time len MACs IPs id ...; expected = reference): $(first_diff "$(records "$ref")" "$(records "$out")")"
  fi
}

# =============================================================================================
if [[ $large != 1 ]]; then

  # -------------------------------------------------------------------------------------------
  # 1. Merges against mergecap -F pcap, and determinism.
  # mergecap 4.0 takes, among inputs whose next packets have equal timestamps, the LAST one (its
  # is_earlier() is true on equality); veipipe orders equal timestamps by declaration order
  # (docs/architecture.md, "Ordering"). So where ties occur, `veipipe A, B` is compared with `mergecap B A`, which
  # picks the same packet at every step, and with `mergecap A B` only as a set of packets.
  m2a=$dir/m2a.pcap m2b=$dir/m2b.pcap m2c=$dir/m2c.pcap
  gen "$m2a" --size 3MiB --seed 11 --rate 100kpps --start 1700000000
  gen "$m2b" --size 3MiB --seed 12 --rate 100kpps --start 1700000000.01     # same 10 µs grid: ties
  gen "$m2c" --size 3MiB --seed 13 --rate 100kpps --start 1700000000.010005 # off A's grid: no ties

  merge_desc() { # merge_desc OUT IN...: the first input as background, the others with rebase=none
    local out=$1 first=$2 d
    shift 2
    d="pcap($first) -> m: merge(end=all) -> file($out)"
    local f
    for f in "$@"; do d+="; pcap($f, rebase=none) -> m"; done
    printf '%s' "$d"
  }

  # 2-way without equal timestamps: identical to mergecap in the same input order.
  vp m2_free run -q -e "$(merge_desc m2_free.pcap "$m2a" "$m2c")"
  expect_rc 0 "2-way merge (no ties) runs"
  valid_output m2_free.pcap
  expect_eq "2-way merge (no ties) has no equal timestamps (test data)" 0 "$(times m2_free.pcap | equal_neighbours)"
  mergecap -F pcap -w m2_free.ref "$m2a" "$m2c"
  same_pcap "2-way merge (no ties) is byte-identical to mergecap -F pcap A C" m2_free.pcap m2_free.ref

  # 2-way with equal timestamps.
  vp m2_tie run -q -e "$(merge_desc m2_tie.pcap "$m2a" "$m2b")"
  expect_rc 0 "2-way merge (ties) runs"
  valid_output m2_tie.pcap
  ties=$(times m2_tie.pcap | equal_neighbours)
  if ((ties > 1000)); then pass; else fail "2-way merge (ties): test data should have many equal timestamps, has $ties"; fi
  mergecap -F pcap -w m2_tie.ref "$m2b" "$m2a"
  same_pcap "2-way merge (ties) is byte-identical to mergecap -F pcap B A (ties in declaration order)" \
    m2_tie.pcap m2_tie.ref
  mergecap -F pcap -w m2_tie.direct "$m2a" "$m2b"
  expect_lines "2-way merge (ties) has the same packets as mergecap -F pcap A B (as a set)" \
    "$(records m2_tie.direct | sort)" "$(records m2_tie.pcap | sort)"
  if ! cmp -s m2_tie.pcap m2_tie.direct; then
    note "2-way merge (ties): mergecap A B differs from veipipe only in the order of equal timestamps (expected, see above)"
  fi
  # At the first equal timestamp, A's packet (declaration rank 0) comes first.
  tie_recs=$(records m2_tie.pcap)
  tie_line=$(awk -F'\t' '$1 == pt {print NR - 1; exit} {pt = $1}' <<<"$tie_recs")
  tie_rec=$(sed -n "${tie_line:-1}p" <<<"$tie_recs")
  expect_eq "2-way merge (ties): at the first equal timestamp (packet ${tie_line:-?}) the first input's packet comes first" \
    "$(records "$m2a" | awk -F'\t' -v t="${tie_rec%%$'\t'*}" '$1 == t' | head -n 1)" "$tie_rec"

  vp m2_tie2 run -q -e "$(merge_desc m2_tie2.pcap "$m2a" "$m2b")"
  expect_rc 0 "2-way merge (ties) second run"
  expect_true "2-way merge (ties): two runs give byte-identical files" cmp m2_tie.pcap m2_tie2.pcap

  # 8-way, first without ties (1 µs apart on a 10 µs grid), then with many (multi-way) ties.
  free8=() tie8=()
  for k in 0 1 2 3 4 5 6 7; do
    gen "$dir/f8_$k.pcap" --size 512KiB --seed $((100 + k)) --rate 100kpps --start "1700000000.00${k}00${k}"
    free8+=("$dir/f8_$k.pcap")
    timing=constant
    ((k >= 6)) && timing=poisson
    gen "$dir/t8_$k.pcap" --size 512KiB --seed $((200 + k)) --rate $((k % 2 ? 50 : 100))kpps --timing $timing \
      --start "1700000000.00$k"
    tie8+=("$dir/t8_$k.pcap")
  done
  vp m8_free run -q -e "$(merge_desc m8_free.pcap "${free8[@]}")"
  expect_rc 0 "8-way merge (no ties) runs"
  valid_output m8_free.pcap
  expect_eq "8-way merge (no ties) has no equal timestamps (test data)" 0 "$(times m8_free.pcap | equal_neighbours)"
  mergecap -F pcap -w m8_free.ref "${free8[@]}"
  same_pcap "8-way merge (no ties) is byte-identical to mergecap -F pcap" m8_free.pcap m8_free.ref

  vp m8_tie run -q -e "$(merge_desc m8_tie.pcap "${tie8[@]}")"
  expect_rc 0 "8-way merge (ties) runs"
  valid_output m8_tie.pcap
  ties=$(times m8_tie.pcap | equal_neighbours)
  if ((ties > 1000)); then pass; else fail "8-way merge (ties): test data should have many equal timestamps, has $ties"; fi
  reversed=()
  for ((k = ${#tie8[@]} - 1; k >= 0; k--)); do reversed+=("${tie8[k]}"); done
  mergecap -F pcap -w m8_tie.ref "${reversed[@]}"
  same_pcap "8-way merge (ties) is byte-identical to mergecap -F pcap with the inputs reversed" m8_tie.pcap m8_tie.ref
  mergecap -F pcap -w m8_tie.direct "${tie8[@]}"
  expect_lines "8-way merge (ties) has the same packets as mergecap -F pcap (as a set)" \
    "$(records m8_tie.direct | sort)" "$(records m8_tie.pcap | sort)"
  vp m8_tie2 run -q -e "$(merge_desc m8_tie2.pcap "${tie8[@]}")"
  expect_rc 0 "8-way merge (ties) second run"
  expect_true "8-way merge (ties): two runs give byte-identical files" cmp m8_tie.pcap m8_tie2.pcap

  # -------------------------------------------------------------------------------------------
  # 2. at=: B (64-byte frames only) placed 2 s after A's (IMIX: 60/590/1514) first packet.
  A=$dir/A.pcap B=$dir/B.pcap C=$dir/C.pcap
  gen "$A" --count 10000 --rate 2kpps --timing poisson --seed 21 --start 1700000000.123457
  a_count=$(gen_count)
  gen "$B" --count 3000 --mix 64 --rate 1kpps --seed 22 --start 1600000000.25
  b_count=$(gen_count)
  gen "$C" --count 1000 --mix 64 --rate 1kpps --seed 23 --start 1700000001.0000005
  a_times=$(times "$A") b_times=$(times "$B") c_times=$(times "$C")
  a_first=$(head -n 1 <<<"$a_times")
  a_last=$(tail -n 1 <<<"$a_times")

  vp at run -q --stats-json at.json -e "pcap($A) -> m: merge(end=all) -> file(at.pcap); pcap($B, at=+2s) -> m"
  expect_rc 0 "at=+2s runs"
  valid_output at.pcap
  expect_eq "at=+2s: output has every packet of A and B" $((a_count + b_count)) "$(count at.pcap)"
  out_b=$(times_len at.pcap 64)
  expect_eq "at=+2s: B's first packet is 2 s after A's first ($a_first)" \
    "$(add_time 2 0 <<<"$a_first")" "$(head -n 1 <<<"$out_b")"
  expect_lines "at=+2s: B keeps its own packet spacing" "$(rel_ns <<<"$b_times")" "$(rel_ns <<<"$out_b")"
  expect_lines "at=+2s: A's packets keep their times" "$a_times" "$(times_len at.pcap 64 !)"
  expect_eq "at=+2s: output time never decreases" "" "$(times at.pcap | first_decrease)"

  # end=first (the default): nothing after the background's last packet.
  vp at_end run -q -e "pcap($A) -> m: merge -> file(at_end.pcap); pcap($B, at=+4s) -> m"
  expect_rc 0 "at=+4s with end=first runs"
  valid_output at_end.pcap
  expect_eq "end=first: the output ends with the background's last packet" "$a_last" "$(times at_end.pcap | tail -n 1)"
  expect_eq "end=first: the output holds all of A" "$a_count" "$(times_len at_end.pcap 64 ! | wc -l)"

  # -------------------------------------------------------------------------------------------
  # 3. shift=, rebase=, filter=, precision=, standard input/output, pcapng input, FILE descriptions.
  vp shift run -q -e "pcap($A, shift=1500ms) -> file(shift.pcap)"
  expect_rc 0 "shift=1500ms runs"
  valid_output shift.pcap
  expect_lines "shift=1500ms adds 1.5 s to every timestamp" "$(add_time 1 500000000 <<<"$a_times")" \
    "$(times shift.pcap)"

  vp at_shift run -q -e "pcap($A) -> m: merge(end=all) -> file(at_shift.pcap); pcap($B, at=+2s, shift=-500ms) -> m"
  expect_rc 0 "at=+2s shift=-500ms runs"
  valid_output at_shift.pcap
  expect_eq "at=+2s shift=-500ms: B starts 1.5 s after A" "$(add_time 1 500000000 <<<"$a_first")" \
    "$(times_len at_shift.pcap 64 | head -n 1)"

  vp bg_shift run -q -e "pcap($A, shift=1s) -> m: merge(end=all) -> file(bg_shift.pcap); pcap($B, at=+2s) -> m"
  expect_rc 0 "background shift=1s with at=+2s runs"
  expect_eq "at= counts from the background's first packet as written (shifted by 1 s)" \
    "$(add_time 3 0 <<<"$a_first")" "$(times_len bg_shift.pcap 64 | head -n 1)"

  vp rebase_none run -q -e "pcap($A) -> m: merge(end=all) -> file(rebase_none.pcap); pcap($C, rebase=none) -> m"
  expect_rc 0 "rebase=none runs"
  valid_output rebase_none.pcap
  expect_lines "rebase=none keeps C's original timestamps" "$c_times" \
    "$(times_len rebase_none.pcap 64)"
  expect_eq "rebase=none: output time never decreases" "" "$(times rebase_none.pcap | first_decrease)"
  expect_lines "rebase=none: A's packets keep their times" "$a_times" \
    "$(times_len rebase_none.pcap 64 !)"

  vp rebase_default run -q -e "pcap($A) -> m: merge(end=all) -> file(rebase_default.pcap); pcap($C) -> m"
  expect_rc 0 "no at/rebase runs"
  expect_true "without at= or rebase=, times are kept (same bytes as rebase=none)" cmp rebase_default.pcap rebase_none.pcap

  vp rebase_shift run -q -e "pcap($A) -> m: merge(end=all) -> file(rebase_shift.pcap); pcap($C, rebase=none, shift=2s) -> m"
  expect_rc 0 "rebase=none shift=2s runs"
  expect_lines "rebase=none shift=2s adds 2 s to C's original times" "$(add_time 2 0 <<<"$c_times")" \
    "$(times_len rebase_shift.pcap 64)"

  vp rebase_first run -q -e "pcap($A) -> m: merge(end=all) -> file(rebase_first.pcap); pcap($B, rebase=first) -> m"
  expect_rc 0 "rebase=first runs"
  valid_output rebase_first.pcap
  expect_eq "rebase=first puts B's first packet at A's first" "$a_first" "$(times_len rebase_first.pcap 64 | head -n 1)"

  # filter=: the same packets, and the same bytes, as tcpdump's BPF.
  vp filter run -q -e "pcap($A, filter=udp) -> file(filter.pcap)"
  expect_rc 0 "filter=udp runs"
  valid_output filter.pcap
  tcpdump -r "$A" -w filter.ref udp 2>/dev/null
  udp_count=$(count filter.ref)
  if ((udp_count > 0)); then pass; else fail "filter=udp: tcpdump finds no UDP packet in the test trace"; fi
  expect_eq "filter=udp keeps as many packets as tcpdump -r A udp" "$udp_count" "$(count filter.pcap)"
  expect_eq "filter=udp keeps no packet that is not UDP (tshark)" 0 "$(ts -r filter.pcap -Y 'not udp' | wc -l)"
  expect_true "filter=udp: the records equal tcpdump's from byte 24 on" cmp -i 24 filter.pcap filter.ref
  vp filter2 run -q -e "pcap($A, filter=\"tcp and dst port 80\") -> file(filter2.pcap)"
  expect_rc 0 "filter=\"tcp and dst port 80\" runs"
  expect_eq "filter=\"tcp and dst port 80\" keeps as many packets as tcpdump" \
    "$(tcpdump -r "$A" -w - 'tcp and dst port 80' 2>/dev/null | capinfos -c -M - 2>/dev/null | awk '/Number of packets/ {print $NF}')" \
    "$(count filter2.pcap)"

  # precision=ns
  vp ns run -q -e "pcap($A) -> file(ns.pcap, precision=ns)"
  expect_rc 0 "precision=ns runs"
  valid_output ns.pcap
  expect_grep "precision=ns: capinfos reports nanoseconds" 'precision: +nanoseconds' <(capinfos ns.pcap 2>&1)
  expect_eq "precision=ns: nanosecond pcap magic" a1b23c4d "$(magic ns.pcap)"
  expect_lines "precision=ns: timestamps unchanged" "$a_times" "$(times ns.pcap)"

  # Standard input and output, through pipes (not seekable).
  last_label=stdio last_cmd="cat A.pcap | veipipe run -q -e 'pcap(-) -> file(-)' | cat >stdio.pcap"
  # shellcheck disable=SC2002  # a pipe, not a file, on standard input
  cat "$A" | timeout "$limit" "$veipipe" run -q -e "pcap(-) -> file(-)" 2>stdio.err | cat >stdio.pcap
  rc=${PIPESTATUS[1]}
  expect_rc 0 "pcap(-) -> file(-) runs"
  valid_output stdio.pcap
  expect_eq "file(-): microsecond little-endian pcap magic" a1b2c3d4 "$(magic stdio.pcap)"
  expect_true "pcap(-) -> file(-): records equal the input's from byte 24 on" cmp -i 24 stdio.pcap "$A"

  # pcapng input (if_tsresol 9) through libpcap.
  ng=$corpus/scapy-ikev2_nat_t.pcapng
  vp pcapng run -q -e "pcap($ng) -> file(pcapng.pcap)"
  expect_rc 0 "pcapng input runs"
  valid_output pcapng.pcap
  expect_eq "pcapng input: 54 records" 54 "$(count pcapng.pcap)"
  expect_lines "pcapng input: same timestamps as tshark reads from the pcapng" "$(times "$ng")" \
    "$(times pcapng.pcap)"
  expect_eq "pcapng input: written as nanosecond pcap (precision=auto)" a1b23c4d "$(magic pcapng.pcap)"

  # A description read from a file, on several lines.
  printf 'pcap(%s) -> m: merge(end=all) -> file(desc.pcap)\npcap(%s, at=+2s) -> m\n' "$A" "$B" >desc.vp
  vp desc run -q desc.vp
  expect_rc 0 "veipipe run FILE runs"
  expect_true "veipipe run FILE gives the same bytes as -e" cmp desc.pcap at.pcap

  # -------------------------------------------------------------------------------------------
  # 4. Bad input: exit status and a message naming the file (and record/offset where relevant).
  vp missing run -q -e "pcap(no_such.pcap) -> file(missing.pcap)"
  expect_rc 1 "missing input file"
  expect_grep "missing input file: message names it" 'no_such\.pcap' missing.err

  mkdir adir
  vp isdir run -q -e "pcap(adir) -> file(isdir.pcap)"
  expect_rc 1 "directory as input"
  expect_grep "directory as input: message names it" 'adir' isdir.err

  vp empty run -q -e "pcap($corpus/joincap-empty) -> file(empty.pcap)"
  expect_rc 1 "empty input file"
  expect_grep "empty input file: message names it" 'joincap-empty' empty.err

  printf 'this is a text file, not a capture\nsecond line\n' >text.txt
  vp text run -q -e "pcap(text.txt) -> file(text.pcap)"
  expect_rc 1 "text file as input"
  expect_grep "text file as input: message names it" 'text\.txt' text.err

  trunc=$corpus/joincap-unexpected_eof_on_second_packet.pcap
  vp trunc run -e "pcap($trunc) -> file(trunc.pcap)"
  expect_rc 3 "truncated record"
  valid_output trunc.pcap
  expect_eq "truncated record: the whole record before it is kept" 1 "$(count trunc.pcap)"
  expect_grep "truncated record: message names the file" 'joincap-unexpected_eof_on_second_packet\.pcap' trunc.err
  expect_grep "truncated record: message gives the byte offset" 'byte offset 248' trunc.err
  vp trunc_q run -q --stats-json trunc.json -e "pcap($trunc) -> file(trunc_q.pcap)"
  expect_rc 3 "truncated record with -q"
  expect_grep "truncated record with -q: --stats-json holds the warning" 'byte offset' trunc.json
  expect_grep "truncated record with -q: the warning is still on stderr" 'byte offset 248' trunc_q.err

  bad_end=$corpus/joincap-bad_end.pcap
  vp bad_end run -e "pcap($bad_end) -> file(bad_end.pcap)"
  expect_rc 3 "corrupt record header"
  valid_output bad_end.pcap
  expect_eq "corrupt record header: the 851 records before it are kept" 851 "$(count bad_end.pcap)"
  expect_grep "corrupt record header: message names file, record and byte offset" \
    'joincap-bad_end\.pcap.*record 851.*byte offset 543036' bad_end.err

  vp linktype run -q -e "pcap($corpus/tcpreplay-test.pcap) -> m: merge -> file(linktype.pcap); pcap($corpus/tcpdump-tcp-handshake-nano.pcap) -> m"
  expect_rc 2 "link type mismatch"
  expect_grep "link type mismatch: message names the output's link type" 'EN10MB' linktype.err
  expect_grep "link type mismatch: message names the source's link type and file" \
    'tcpdump-tcp-handshake-nano\.pcap.*LINUX_SLL' linktype.err

  vp unwritable run -q -e "pcap($A) -> file(/nonexistent/dir/out.pcap)"
  expect_rc 1 "unwritable output path"
  expect_grep "unwritable output path: message names it" '/nonexistent/dir/out\.pcap' unwritable.err

  vp typo run -q -e "pcap($A, att=1s) -> file(typo.pcap)"
  expect_rc 2 "misspelt parameter"
  expect_grep "misspelt parameter: located as <command line>:1:col" '^<command line>:1:[0-9]+: error:' typo.err
  expect_grep "misspelt parameter: a caret line under it" '^ *\| *\^~*$' typo.err
  expect_grep "misspelt parameter: did-you-mean note" "note: did you mean 'at'\?" typo.err
  expect_no_file "misspelt parameter: no output written" typo.pcap

  vp unknown_stage run -q -e "pcap($A) -> frob -> file(unknown_stage.pcap)"
  expect_rc 2 "unknown stage"
  expect_grep "unknown stage: message names it" "error: .*'frob'" unknown_stage.err
  expect_grep "unknown stage: a caret line under it" '^ *\| *\^~*$' unknown_stage.err

  cp "$A" same.pcap
  vp same run -q -e "pcap(same.pcap) -> file(./same.pcap)"
  expect_rc 2 "output that is also an input"
  expect_grep "output that is also an input: says so" "is also an input" same.err
  expect_eq "output that is also an input: the input is untouched" "$(sha256sum <"$A")" "$(sha256sum <same.pcap)"

  vp badfilter run -q -e "pcap($A, filter=udpp) -> file(badfilter.pcap)"
  expect_rc 2 "BPF that does not compile"
  expect_grep "bad filter: located under the filter value" "^<command line>:1:[0-9]+: error: bad filter 'udpp'" badfilter.err
  expect_grep "bad filter: a caret line under it" '^ *\| *\^~~~$' badfilter.err
  expect_no_file "bad filter: no output written" badfilter.pcap

  vp three run -q -e "pcap($A, att=1s) -> frob(x=1) -> file(three.pcap, precision=ms)"
  expect_rc 2 "three errors at once"
  expect_eq "three errors at once: three error: lines" 3 "$(grep -c 'error:' three.err)"

  # -------------------------------------------------------------------------------------------
  # 5. check, graph, stages.
  two="pcap($A) -> m: merge -> file(checked.pcap); pcap($B, at=+2s) -> m"
  vp check check -e "$two"
  expect_rc 0 "veipipe check"
  expect_no_file "veipipe check does not create the output" checked.pcap
  vp check_missing check -e "pcap(no_such.pcap) -> file(checked.pcap)"
  expect_rc 1 "veipipe check with a missing input"
  vp check_bad check -e "pcap($A, att=1s) -> file(checked.pcap)"
  expect_rc 2 "veipipe check with a bad description"

  vp graph graph -e "$two"
  expect_rc 0 "veipipe graph"
  expect_grep "veipipe graph shows the merge" 'merge' graph.out
  expect_grep "veipipe graph shows both sources" 'B\.pcap' graph.out
  vp dot graph --dot -e "$two"
  expect_rc 0 "veipipe graph --dot"
  expect_grep "graph --dot is a digraph" '^digraph' dot.out
  expect_grep "graph --dot has edges" '->' dot.out

  vp stages stages
  expect_rc 0 "veipipe stages"
  for s in pcap merge file; do expect_grep "veipipe stages lists $s" "^$s " stages.out; done
  vp stages_pcap stages pcap
  expect_rc 0 "veipipe stages pcap"
  expect_grep "veipipe stages pcap documents at=" '^ +at +' stages_pcap.out
  vp stages_nope stages nope
  expect_rc 2 "veipipe stages nope"
  expect_grep "veipipe stages nope: message names it" 'nope' stages_nope.err
  expect_grep "veipipe stages nope: lists the stages, none being close" '^note: valid stages: .*pcap' stages_nope.err
  vp stages_mrege stages mrege
  expect_grep "veipipe stages mrege: did you mean" "^note: did you mean 'merge'\?" stages_mrege.err

  # -------------------------------------------------------------------------------------------
  # 5b. Where the description comes from (issue 11, item 17): -e or FILE or `-`, never both; a
  # FILE that cannot be read or is not text is a bad argument (exit 2) naming it, never echoed.
  printf 'pcap(%s) -> file(both.pcap)\n' "$A" >both.vp
  vp both run -q both.vp -e "pcap($A) -> file(both.pcap)"
  expect_rc 2 "a FILE and -e together"
  expect_grep "a FILE and -e together: says to give one" "^veipipe: error: .*-e or as FILE \('both\.vp'\), not both" both.err
  expect_no_file "a FILE and -e together: nothing written" both.pcap
  vp nofile run -q no_such.vp
  expect_rc 2 "a missing description FILE"
  expect_grep "a missing description FILE: names it, with the reason" '^veipipe: error: no_such\.vp: .*No such file or directory' nofile.err
  vp dirfile check adir
  expect_rc 2 "a directory as description FILE"
  expect_grep "a directory as description FILE: names it, with the reason" '^veipipe: error: adir: .*Is a directory' dirfile.err
  printf 'pcap(%s) -> file(stdin_desc.pcap)\n' "$A" >stdin_desc.vp
  run stdin_desc "$veipipe" run -q - <stdin_desc.vp
  expect_rc 0 "run - reads the description from standard input"
  expect_true "run -: records equal the input's" cmp -i 24 stdin_desc.pcap "$A"
  printf 'pcap(-) -> file(stdin_twice.pcap)\n' >stdin_twice.vp
  run stdin_twice "$veipipe" check - <stdin_twice.vp
  expect_rc 2 "check -: pcap(-) cannot read the standard input the description came from"
  expect_grep "check -: the caret is under pcap's -" '^<stdin>:1:6: error: .*standard input.*read twice' stdin_twice.err
  vp binary run -q "$A"
  expect_rc 2 "a capture given as the description"
  expect_grep "a capture as the description: not text, at byte offset 0" \
    "^$A: error: not a text description: byte offset 0 \\(line 1\\) is 0x.., not UTF-8" binary.err
  if LC_ALL=C grep -q '[^[:print:][:space:]]' binary.err; then fail_ctx "a capture as the description: no raw byte printed"; else pass; fi
  # A NUL inside a path would end it early for open(2): the whole description is refused.
  printf 'pcap(%s\0junk) -> file(nul.pcap)\n' "$A" >nul.vp
  vp nul run -q nul.vp
  expect_rc 2 "a NUL byte in a description FILE"
  expect_grep "a NUL byte: its offset" "^nul\.vp: error: not a text description: byte offset $((5 + ${#A})) \\(line 1\\) is a NUL byte" nul.err
  expect_no_file "a NUL byte: nothing written" nul.pcap

  # `veipipe inject` resolves a relative path in the client's directory, not the server's, and
  # names a missing file with its reason; --help gives the size limits.
  mkdir srv cli && cp "$C" cli/inj.pcap && mkfifo feed
  (cd srv && timeout "$limit" "$veipipe" run -q -e "pcap(-) -> m: merge -> file(injected.pcap); control(ctl.sock) -> m" \
    <../feed 2>../inject_run.err) &
  server=$!
  exec 7>feed
  cat "$A" >&7
  for _ in $(seq 100); do [[ -S srv/ctl.sock ]] && break; sleep 0.05; done
  run inject_rel env -C cli "$veipipe" inject ../srv/ctl.sock 'pcap(inj.pcap)'
  expect_rc 0 "inject pcap(relative path)"
  expect_eq "inject pcap(relative path): answered ok 1000" "ok 1000" "$(cat inject_rel.out)"
  run inject_missing env -C cli "$veipipe" inject ../srv/ctl.sock 'pcap(nope.pcap)'
  expect_rc 1 "inject of a missing file"
  expect_grep "inject of a missing file: names it, says why" '^veipipe: error: nope\.pcap: No such file or directory' inject_missing.err
  exec 7>&-
  wait "$server"
  rc=$? last_label=inject_run last_cmd="veipipe run (the inject server)"
  expect_rc 0 "the inject server's run"
  expect_eq "inject: the background and the 1000 injected packets written" "$((a_count + 1000))" "$(count srv/injected.pcap)"
  vp inject_help inject --help
  expect_grep "inject --help gives the line limit" '64 KiB' inject_help.out
  expect_grep "inject --help gives the injection limit" '64 MiB' inject_help.out

  # -------------------------------------------------------------------------------------------
  # 5c. `check` refuses what `run` would (issue 11, item 16), with the same message and status, and
  # `run` refuses it before any output is touched: an output or labels file in a missing
  # directory, an interface that does not exist, a socket path too long for a Unix address.
  cp "$A" kept.pcap
  kept_sum=$(sha256sum <kept.pcap)
  long_sock=$dir/$(printf 's%.0s' {1..120}).sock
  check_like_run() { # check_like_run NAME STATUS ERROR-REGEX DESCRIPTION
    vp "$1.check" check -e "$4"
    expect_rc "$2" "$1: check"
    expect_grep "$1: check says why" "$3" "$1.check.err"
    vp "$1.run" run -q -e "$4"
    expect_rc "$2" "$1: run"
    expect_eq "$1: run gives check's message" "$(cat "$1.check.err")" "$(cat "$1.run.err")"
    expect_eq "$1: the existing output kept.pcap is untouched" "$kept_sum" "$(sha256sum <kept.pcap)"
  }
  check_like_run nodir_out 1 '^veipipe: error: nodir/o\.pcap: No such file or directory' "pcap($A) -> file(nodir/o.pcap)"
  check_like_run nodir_labels 1 '^veipipe: error: nodir/l\.csv: No such file or directory' \
    "pcap($A) -> file(kept.pcap, labels=nodir/l.csv)"
  check_like_run notdir_out 1 "^veipipe: error: kept\.pcap/o\.pcap: Not a directory" "pcap($A) -> file(kept.pcap/o.pcap)"
  check_like_run no_live 1 '^veipipe: error: live nosuch0: no such interface' \
    "pcap($A) -> m: merge -> file(kept.pcap); live(nosuch0) -> m"
  check_like_run no_nic 1 '^veipipe: error: nic nosuch0: no such interface' "pcap($A) -> nic(nosuch0)"
  check_like_run long_socket 2 '^<command line>:1:[0-9]+: error: not usable as a Unix socket path: [0-9]+ bytes' \
    "pcap($A) -> m: merge -> file(kept.pcap); control($long_sock) -> m"
  check_like_run nodir_socket 1 '^veipipe: error: nodir/c\.sock: No such file or directory' \
    "pcap($A) -> m: merge -> file(kept.pcap); control(nodir/c.sock) -> m"
  echo 'not a socket' >notsock.txt
  check_like_run notsock 1 '^veipipe: error: notsock\.txt: exists and is not a socket' \
    "pcap($A) -> m: merge -> file(kept.pcap); control(notsock.txt) -> m"
  python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64); time.sleep(30)' busy.sock &
  listener=$!
  for _ in $(seq 100); do [[ -S busy.sock ]] && break; sleep 0.05; done
  check_like_run busy_socket 1 '^veipipe: error: busy\.sock: another process is listening on this socket' \
    "pcap($A) -> m: merge -> file(kept.pcap); control(busy.sock) -> m"
  kill "$listener" 2>/dev/null
  wait "$listener" 2>/dev/null
  vp check_any check -e "pcap($A) -> m: merge -> file(kept.pcap); live(any) -> m; live(lo) -> m"
  expect_rc 0 "check: live(any) and live(lo) exist"

  # -------------------------------------------------------------------------------------------
  # 6. --stats-json (written by the at=+2s run above).
  if command -v python3 >/dev/null; then
    expect_true "--stats-json is valid JSON" python3 -m json.tool at.json
    expect_eq "--stats-json: packets, status and per-source packets" "$((a_count + b_count)) 0 $a_count $b_count" \
      "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["packets"], d["status"], *[s["packets"] for s in d["sources"]])' at.json 2>&1)"
  else
    note "python3 not found: --stats-json checked with grep only"
    expect_grep "--stats-json: packet count" "^\\{\"status\":0,\"packets\":$((a_count + b_count))," at.json
  fi

  # -------------------------------------------------------------------------------------------
  # 7. Every output above is a valid capture for tcpdump.
  for f in "${outputs[@]}"; do
    expect_true "tcpdump reads $f" tcpdump -r "$f" -w /dev/null
  done

fi

# =============================================================================================
# 8. Large file (VEIPIPE_LARGE_TEST=1): a trace over 4 GiB, to /dev/null and to disk.
if [[ $large == 1 ]]; then
  limit=900
  free_kib=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
  if ((free_kib < 12 * 1024 * 1024)); then
    echo "cli_test: large-file test skipped: $((free_kib / 1024 / 1024)) GiB free in $dir, 12 GiB needed"
  else
    big=$dir/big.pcap
    if gen "$big" --size 4100MiB --mix imix --seed 31; then
      big_count=$(gen_count)
      big_size=$(stat -c %s "$big")
      if ((big_size > 4 * 1024 * 1024 * 1024)); then pass; else fail "large trace is over 4 GiB: $big_size bytes"; fi

      vp big_null run -q --stats-json big_null.json -e "pcap($big) -> file(/dev/null)"
      expect_rc 0 "large trace to /dev/null"
      expect_grep "large trace to /dev/null: $big_count packets (veigen's count)" "\"packets\":$big_count," big_null.json

      vp big_disk run -q --stats-json big_disk.json -e "pcap($big) -> file(big_out.pcap)"
      expect_rc 0 "large trace to disk"
      expect_grep "large trace to disk: $big_count packets in the stats" "\"packets\":$big_count," big_disk.json
      expect_eq "large trace to disk: capinfos counts $big_count packets" "$big_count" "$(count big_out.pcap)"
      expect_true "large trace to disk: byte-identical to the input" cmp "$big" big_out.pcap
    fi
    rm -f "$big" big_out.pcap
  fi
fi

summary cli_test
