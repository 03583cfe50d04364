#!/usr/bin/env bash
# End-to-end tests of the vei.h example clients, checked by independent peers (tcpdump, tshark,
# capinfos, editcap, cmp):
#   - nech0 output has the same records as its input: byte for byte after the 24-byte file header
#     (pcap µs and ns, through a pipe too), the same packets to tcpdump (pcapng input as well);
#     bad inputs give the right error code and exit status; an output that is the input is refused
#     with the input untouched;
#   - vei_pinger output holds exactly the background plus the packets it says were accepted: as
#     many ICMP echo requests as accepted pings, from the client to the server the library picks
#     in the background (checks.sh vei_hosts), zero bad checksums with tshark's IP/TCP/UDP
#     validation on (ICMP is always validated), time never going back, and (once this build has
#     the http stage) every POST_JPG a valid HTTP POST of a JPEG to tshark, answered 200.
# Everything at top speed (VEI_SPEED=topspeed): tests/vei_events_test.sh checks the default pacing.
#
# Usage: tests/vei_test.sh path/to/nech0 path/to/vei_pinger path/to/veigen
# Everything is written under one `mktemp -d` directory removed on every exit path; every run of a
# tool is under `timeout`.
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/nech0 path/to/vei_pinger path/to/veigen"
nech0=$(realpath "${1:?$usage}") || exit 2
pinger=$(realpath "${2:?$usage}") || exit 2
veigen=$(realpath "${3:?$usage}") || exit 2

require vei_test tshark tcpdump capinfos editcap cmp timeout awk od sort "$nech0" "$pinger" "$veigen"
export VEI_SPEED=topspeed

dir=$(mktemp -d "${TMPDIR:-/tmp}/vei_test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$dir" || exit 1

limit=120 # seconds allowed to every run: a hang fails the check instead of blocking
check() { # check WHAT COMMAND...: passes when COMMAND succeeds (its stderr shown on failure)
  local what=$1
  shift
  if "$@" 2>"$dir/check.err"; then pass; else fail "$what" "command: $*" "$(head -n 5 "$dir/check.err")"; fi
}
expect_eq() { # expect_eq WHAT GOT WANT
  if [[ $2 == "$3" ]]; then pass; else fail "$1" "got:  $2" "want: $3"; fi
}

# tshark quietly, with a time limit; checksum validation on for every protocol that has the
# preference (ICMP has none: its checksum is always verified).
prefs=()
defaults=$(timeout "$limit" tshark -G defaultprefs 2>/dev/null)
for p in ip.check_checksum tcp.check_checksum udp.check_checksum icmp.check_checksum; do
  grep -q "^#\?$p:" <<<"$defaults" && prefs+=(-o "$p:TRUE")
done
if [[ ${#prefs[@]} -ge 6 ]]; then pass; else fail "tshark has the ip/tcp/udp checksum preferences" "found: ${prefs[*]}"; fi
ts() { timeout "$limit" tshark -n "${prefs[@]}" "$@" 2>/dev/null; }
count() { # count FILE FILTER: packets matching a display filter
  ts -r "$1" -Y "$2" -T fields -e frame.number | wc -l
}
records() { timeout "$limit" capinfos -M -c -T -r "$1" 2>/dev/null | awk -F'\t' 'NR==1 {print $2}'; }

# ---------------------------------------------------------------------------------------------
# Inputs

timeout "$limit" "$veigen" -o bg.pcap --count 20000 --seed 3 >/dev/null 2>&1 || { echo "vei_test: veigen failed" >&2; exit 1; }
timeout "$limit" "$veigen" -o bg-ns.pcap --count 5000 --precision ns --seed 4 >/dev/null 2>&1 || exit 1
timeout "$limit" "$veigen" -o big.pcap --size 16MiB --seed 5 >/dev/null 2>&1 || exit 1
timeout "$limit" editcap -F pcapng bg.pcap bg.pcapng || exit 1

# ---------------------------------------------------------------------------------------------
# nech0: the same records as the input

same_records() { # same_records INPUT OUTPUT: byte-identical after the file header, same packets to tcpdump
  local in=$1 out=$2
  check "nech0 $in: records byte-identical after the 24-byte header" cmp -s -i 24 "$in" "$out"
  check "nech0 $in: same link type" cmp -s <(od -An -tx1 -j20 -N4 "$in") <(od -An -tx1 -j20 -N4 "$out")
  same_packets "$in" "$out"
}
same_packets() { # same_packets INPUT OUTPUT: tcpdump reads both and shows the same packets
  local a b
  a=$(timeout "$limit" tcpdump -nn -tt --time-stamp-precision=nano -xx -r "$1" 2>/dev/null | md5sum)
  b=$(timeout "$limit" tcpdump -nn -tt --time-stamp-precision=nano -xx -r "$2" 2>/dev/null | md5sum)
  expect_eq "tcpdump shows the same packets in $1 and $2" "$b" "$a"
  check "tcpdump reads $2 without error" timeout "$limit" tcpdump -nn -r "$2" -w /dev/null
}

timeout "$limit" "$nech0" bg.pcap out.pcap >nech0.out 2>nech0.err
expect_eq "nech0 bg.pcap exits 0" "$?" 0
check "nech0 prints the tutorial's messages" grep -q '^\[nech0\] initialized OK' nech0.out
same_records bg.pcap out.pcap

timeout "$limit" "$nech0" bg-ns.pcap out-ns.pcap >/dev/null 2>&1
expect_eq "nech0 bg-ns.pcap exits 0" "$?" 0
same_records bg-ns.pcap out-ns.pcap

# The background through a pipe (libvei clients often get it from another program).
# shellcheck disable=SC2016 # $1 is the inner shell's
timeout "$limit" bash -c 'cat bg.pcap | "$1" /dev/stdin out-pipe.pcap' _ "$nech0" >/dev/null 2>&1
expect_eq "nech0 /dev/stdin (a pipe) exits 0" "$?" 0

# nech0 X X (or a hard link of X) refuses before writing anything: the input stays whole.
cp bg.pcap same.pcap
ln -f same.pcap same-link.pcap
before=$(sha256sum <same.pcap)
for out in same.pcap same-link.pcap; do
  timeout "$limit" "$nech0" same.pcap "$out" >/dev/null 2>nech0-same.err
  expect_eq "nech0 same.pcap $out exits 2" "$?" 2
  check "nech0 same.pcap $out says why" grep -q 'is also the input' nech0-same.err
  expect_eq "nech0 same.pcap $out leaves the input as it was" "$(sha256sum <same.pcap)" "$before"
done
same_records bg.pcap out-pipe.pcap

# pcapng in: classic pcap (ns) out, the same packets.
timeout "$limit" "$nech0" bg.pcapng out-ng.pcap >/dev/null 2>&1
expect_eq "nech0 bg.pcapng exits 0" "$?" 0
same_packets bg.pcapng out-ng.pcap

# Bad inputs: the error code by name, the documented exit status, the input untouched.
printf 'this is a text file,\nnot a capture\n' >text.txt
timeout "$limit" "$nech0" text.txt out-bad.pcap >/dev/null 2>err.txt
expect_eq "nech0 on a text file exits 3" "$?" 3
check "nech0 on a text file reports -100 (BAD_BTRACE_FILE)" grep -q -- '-100 (BAD_BTRACE_FILE)' err.txt
timeout "$limit" "$nech0" missing.pcap out-bad.pcap >/dev/null 2>err.txt
expect_eq "nech0 on a missing file exits 2" "$?" 2
timeout "$limit" "$nech0" bg.pcap >/dev/null 2>&1
expect_eq "nech0 with one argument exits 1" "$?" 1

# ---------------------------------------------------------------------------------------------
# vei_pinger: pings and POST_JPGs woven into the background

pinger_run() { # pinger_run LABEL BG RATE JPG-EVERY: runs vei_pinger, sets pings/jpgs/packets
  local label=$1 bg=$2
  timeout "$limit" "$pinger" "$bg" "$label.pcap" "$3" "$4" >"$label.out" 2>"$label.err"
  local rc=$?
  expect_eq "vei_pinger $label exits 0" "$rc" 0
  [[ $rc -eq 0 ]] || sed 's/^/    | /' "$label.err" >&2
  local line
  line=$(grep '^vei_pinger: accepted ' "$label.out")
  pings=$(sed -n 's/.* pings=\([0-9]*\).*/\1/p' <<<"$line")
  jpgs=$(sed -n 's/.* post_jpgs=\([0-9]*\).*/\1/p' <<<"$line")
  packets=$(sed -n 's/.* packets=\([0-9]*\).*/\1/p' <<<"$line")
  if [[ -z $pings || -z $jpgs || -z $packets ]]; then
    fail "vei_pinger $label prints its counts" "stdout: $(cat "$label.out")"
    pings=0 jpgs=0 packets=0
  else
    pass
  fi
  echo "vei_test: vei_pinger $label: $line" >&2
}

# Counts, in one tshark pass over FILE: "<bad checksums> <times going back> <ICMP echo requests>".
# A field may hold several values (an ICMP error quotes an IP header): any 0 status is bad.
full_pass() {
  ts -r "$1" -T fields -E separator=/t -e frame.time_delta -e ip.checksum.status -e icmp.checksum.status \
    -e tcp.checksum.status -e udp.checksum.status -e icmp.type |
    awk -F'\t' '
      { for (i = 2; i <= 5; i++) if ($i ~ /(^|,)0(,|$)/) { bad++; break } }
      $1 < 0 { back++ }
      $6 ~ /^8(,|$)/ { echo++ }
      END { printf "%d %d %d\n", bad, back, echo }'
}

pinger_checks() { # pinger_checks LABEL BG: the output against the counts vei_pinger printed
  local label=$1 bg=$2 out=$1.pcap
  local bg_records out_records
  bg_records=$(records "$bg")
  out_records=$(records "$out")
  expect_eq "$label: output records = background + accepted packets" "$out_records" "$((bg_records + packets))"
  check "$label: tcpdump reads the output" timeout "$limit" tcpdump -nn -r "$out" -w /dev/null

  local bg_bad bg_echo bad back echo
  read -r bg_bad _ bg_echo < <(full_pass "$bg")
  read -r bad back echo < <(full_pass "$out")
  expect_eq "$label: ICMP echo requests added = accepted pings" "$((echo - bg_echo))" "$pings"
  expect_eq "$label: no bad checksum anywhere (IP, ICMP, TCP, UDP)" "$bad $bg_bad" "0 0"
  expect_eq "$label: time never goes back" "$back" 0

  local server client
  read -r server client < <(vei_hosts "$bg")
  expect_eq "$label: every ping $client -> $server with a good ICMP checksum" \
    "$(count "$out" "icmp.type == 8 && icmp.code == 0 && icmp.ident == 30309 && ip.src == $client && ip.dst == $server && icmp.checksum.status == 1")" \
    "$pings"

  # POST_JPG: a complete, valid HTTP POST of a JPEG per event (what the background does not hold).
  added() { echo $(($(count "$out" "$1") - $(count "$bg" "$1"))); }
  local post="ip.src == $client && ip.dst == $server && http.request.method == \"POST\" && http.request.uri == \"/upload\""
  expect_eq "$label: HTTP POSTs to /upload = accepted POST_JPGs" "$(added "$post")" "$jpgs"
  expect_eq "$label: every POST's body is image/jpeg" "$(added "$post && http.content_type contains \"image/jpeg\"")" "$jpgs"
  expect_eq "$label: every POST's body decodes as a JFIF image" "$(added "$post && image-jfif")" "$jpgs"
}

# Whether this build generates VEI_POST_JPG (the http stage lands with the other conversation
# stages): without it the event is refused with -600 and the POST_JPG runs are skipped.
jpg_every=100
timeout "$limit" "$pinger" bg-ns.pcap probe.pcap 0 1 >/dev/null 2>probe.err
if grep -q -- '-600' probe.err; then
  echo "vei_test: VEI_POST_JPG skipped: this build has no http stage" >&2
  jpg_every=0
fi

# As fast as it can, a POST_JPG every 100 events, over 16 MiB of background.
pinger_run fast big.pcap 0 "$jpg_every"
pinger_checks fast big.pcap
if [[ $pings -gt 0 ]]; then pass; else fail "fast: some pings were accepted"; fi
if [[ $jpg_every -eq 0 || $jpgs -gt 0 ]]; then pass; else fail "fast: some POST_JPGs were accepted"; fi

# Paced injection (1000 events/s, a POST_JPG every 10th) into a background transcribed at top
# speed: few get in; the counts must still match.
pinger_run paced bg.pcap 1000 $((jpg_every ? 10 : 0))
pinger_checks paced bg.pcap

# ---------------------------------------------------------------------------------------------

summary vei_test
