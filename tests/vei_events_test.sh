#!/usr/bin/env bash
# The vei.h events end to end, through a client like the original's example (tools/vei_inject: a
# thread started just before the transcription injects the events), checked by tshark:
#   - pacing: on a 3-second background transcribed at its recorded pace (the default), a VEI_PING
#     injected 1.5 s into the run is in the output, between the background packets of its time;
#     a bad VEI_SPEED fails the initialisation with -BAD_SPEED (-800);
#   - each of the 13 events injected into a real Ethernet capture (joincap-ok.pcap: several IPv4
#     hosts) is present as its protocol, between the two hosts the library picks from that
#     background (its server: the most SYNed address; its client: the most frequent other source),
#     and adds no protocol problem; an event whose stage this build lacks is reported as skipped
#     (it must be refused with -BAD_EVENT_TYPE and a message naming the stage);
#   - a background that shows no IP host (802.11 without IP) refuses an event with
#     -NO_BACKGROUND_HOSTS (-700).
#
# Usage: tests/vei_events_test.sh path/to/vei_inject path/to/veipipe path/to/veigen CORPUS-DIR
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/vei_inject path/to/veipipe path/to/veigen CORPUS-DIR"
inject=$(realpath "${1:?$usage}") || exit 2
veipipe=$(realpath "${2:?$usage}") || exit 2
veigen=$(realpath "${3:?$usage}") || exit 2
corpus=$(realpath "${4:?$usage}") || exit 2
require vei_events_test tshark timeout awk sort uniq "$inject" "$veipipe" "$veigen"

dir=$(mktemp -d "${TMPDIR:-/tmp}/vei_events_test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$dir" || exit 1

limit=120
expect_eq() { # expect_eq WHAT GOT WANT
  if [[ $2 == "$3" ]]; then pass; else fail "$1" "got:  $2" "want: $3"; fi
}
count() { tshark -n -r "$1" -Y "$2" -T fields -e frame.number 2>/dev/null | wc -l; }

# ---------------------------------------------------------------------------------------------
# Pacing: the original example's client on a 3-second background, at the default (real time).

timeout "$limit" "$veigen" -o bg3.pcap --count 30 --rate 10pps --seed 7 >/dev/null 2>&1 || { echo "veigen failed" >&2; exit 1; }
start=$(date +%s.%N)
env -u VEI_SPEED timeout "$limit" "$inject" --delay 1.5 bg3.pcap paced.pcap VEI_PING >paced.out 2>paced.err
expect_eq "paced: vei_inject exits 0" "$?" 0
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
if awk -v e="$elapsed" 'BEGIN { exit !(e >= 2.5) }'; then pass; else fail "paced: the run takes the background's 3 s" "took $elapsed s"; fi
expect_eq "paced: VEI_PING accepted (1 packet)" "$(cat paced.out)" "VEI_PING 1"
# Every record's time and whether it is the injected ping (ICMP id 30309); veigen's own echo
# requests carry another identifier.
tshark -n -r paced.pcap -T fields -e frame.time_epoch -e icmp.ident -e icmp.type 2>/dev/null |
  awk -F'\t' 'NR == 1 { first = $1 } { t[NR] = $1 } $2 == "30309" && $3 == "8" { p = NR; n++ }
    END {
      if (n != 1) { print "pings=" n; exit }
      printf "pings=1 at=%.3f between=%s\n", t[p] - first, (p > 1 && p < NR && t[p - 1] <= t[p] && t[p] <= t[p + 1]) ? "yes" : "no"
      printf "offset_ok=%s\n", (t[p] - first >= 1.2 && t[p] - first <= 2.6) ? "yes" : "no"
    }' >paced.check
echo "vei_events_test: paced: $(tr '\n' ' ' <paced.check)(elapsed ${elapsed} s)" >&2
expect_eq "paced: exactly one injected ping in the output" "$(grep -o 'pings=[0-9]*' paced.check)" "pings=1"
expect_eq "paced: the ping lies between two background packets, in time order" "$(grep -o 'between=[a-z]*' paced.check)" "between=yes"
expect_eq "paced: the ping is ~1.5 s into the background, where it was injected" "$(grep -o 'offset_ok=[a-z]*' paced.check)" "offset_ok=yes"
expect_eq "paced: output = background + 1" "$(count paced.pcap 'frame')" 31

VEI_SPEED=fast timeout "$limit" "$inject" bg3.pcap bad-speed.pcap VEI_PING >/dev/null 2>bad-speed.err
expect_eq "VEI_SPEED=fast: initialisation fails (exit 3)" "$?" 3
if grep -q 'VEI_SPEED=fast' bad-speed.err && grep -q -- '-800' bad-speed.err; then pass; else
  fail "VEI_SPEED=fast: stderr names the variable and code -800" "$(cat bad-speed.err)"; fi

# ---------------------------------------------------------------------------------------------
# The 13 events in a real background (10 s), at 4x: a run at top speed could end before the
# injecting thread gets the CPU (which is why real time is the default).

bg=$corpus/joincap-ok.pcap
export VEI_SPEED=4x
read -r server client < <(vei_hosts "$bg")
echo "vei_events_test: $bg: server $server, client $client" >&2

events=(VEI_HTTP_HEAD VEI_DNS_LOOKUP VEI_TWITTER_DHS VEI_TWITTER_LIBVEIPOST VEI_NMAP VEI_SMTP VEI_RSS_FETCH
  VEI_SIP VEI_POST_JPG VEI_SSH_SESSION VEI_SSL_SESSION VEI_TRACEROUTE VEI_PING)
declare -A stage filter
stage=([VEI_HTTP_HEAD]=http [VEI_DNS_LOOKUP]=dns [VEI_TWITTER_DHS]=http [VEI_TWITTER_LIBVEIPOST]=http
  [VEI_NMAP]=synscan [VEI_SMTP]=smtp [VEI_RSS_FETCH]=http [VEI_SIP]=sip [VEI_POST_JPG]=http [VEI_SSH_SESSION]=ssh
  [VEI_SSL_SESSION]=tls [VEI_TRACEROUTE]=traceroute [VEI_PING]=icmp)
# What each event adds (over the background), between its two hosts. Time-exceeded messages come
# from the routers on the way, to the client.
c="ip.src == $client && ip.dst == $server"
filter=(
  [VEI_HTTP_HEAD]="$c && http.request.method == \"HEAD\" && http.request.uri == \"/\""
  [VEI_DNS_LOOKUP]="$c && dns.flags.response == 0 && dns.qry.name == \"www.example.com\" && dns.qry.type == 1"
  [VEI_TWITTER_DHS]="$c && http.request.method == \"GET\" && http.host == \"twitter.com\" && http.request.uri == \"/dhs_dw\""
  [VEI_TWITTER_LIBVEIPOST]="$c && http.request.method == \"POST\" && http.host == \"twitter.com\" && http.request.uri == \"/statuses/update\""
  [VEI_NMAP]="$c && tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport <= 1024"
  [VEI_SMTP]="$c && smtp.req"
  [VEI_RSS_FETCH]="$c && http.request.method == \"GET\" && http.request.uri == \"/feed.rss\""
  [VEI_SIP]="$c && sip.Method == \"INVITE\""
  [VEI_POST_JPG]="$c && http.request.method == \"POST\" && http.request.uri == \"/upload\" && image-jfif"
  [VEI_SSH_SESSION]="$c && ssh.protocol"
  [VEI_SSL_SESSION]="$c && tls.handshake.extensions_server_name == \"www.example.com\""
  [VEI_TRACEROUTE]="ip.dst == $client && icmp.type == 11"
  [VEI_PING]="$c && icmp.type == 8 && icmp.ident == 30309"
)
declare -A least=([VEI_NMAP]=1024)

timeout "$limit" "$inject" "$bg" all.pcap "${events[@]}" >all.out 2>all.err
echo "vei_events_test: vei_inject: $(tr '\n' ' ' <all.out)" >&2
stages=$("$veipipe" stages 2>/dev/null | awk '/^[a-z]/ { print $1 }')
skipped=()
for e in "${events[@]}"; do
  rc=$(awk -v e="$e" '$1 == e { print $2 }' all.out)
  if ! grep -qx "${stage[$e]}" <<<"$stages"; then
    expect_eq "$e: refused with -BAD_EVENT_TYPE without its stage ${stage[$e]}" "$rc" -600
    if grep -q "stage '${stage[$e]}'" all.err; then pass; else fail "$e: the message names the missing stage" "$(cat all.err)"; fi
    skipped+=("$e")
    continue
  fi
  if [[ -n $rc && $rc -gt 0 ]]; then pass; else fail "$e: injected" "inject_event returned '$rc'" "$(head -n 3 all.err)"; fi
  added=$(($(count all.pcap "${filter[$e]}") - $(count "$bg" "${filter[$e]}")))
  if [[ $added -ge ${least[$e]:-1} ]]; then pass; else fail "$e: its conversation is in the output" "filter: ${filter[$e]}" "added: $added"; fi
done
expect_eq "the output holds the background and every injected packet" "$(count all.pcap frame)" \
  "$(($(count "$bg" frame) + $(awk '$2 > 0 { n += $2 } END { print n + 0 }' all.out)))"
# Validity, over the packets to or from the two hosts (whole streams), against the background's.
between="(ip.addr == $client && ip.addr == $server) || (ip.dst == $client && icmp.type == 11)"
tshark -n -r all.pcap -Y "$between" -w all-between.pcap 2>/dev/null
tshark -n -r "$bg" -Y "$between" -w bg-between.pcap 2>/dev/null
expect_eq "the events add no protocol problem (malformed, expert errors, bad checksums, TCP analysis)" \
  "$(protocol_problems all-between.pcap | wc -l)" "$(protocol_problems bg-between.pcap | wc -l)"
[[ ${#skipped[@]} -eq 0 ]] || echo "vei_events_test: skipped, their stage not in this build: ${skipped[*]}" >&2

# ---------------------------------------------------------------------------------------------
# No IP host in the background: refused, never made up.

timeout "$limit" "$inject" "$corpus/libpcap-Network_Join_Nokia_Mobile.pcap" wifi.pcap VEI_PING >wifi.out 2>wifi.err
expect_eq "802.11 background: VEI_PING refused with -NO_BACKGROUND_HOSTS" "$(cat wifi.out)" "VEI_PING -700"
if grep -q 'no two IP hosts' wifi.err; then pass; else fail "802.11 background: stderr says why" "$(cat wifi.err)"; fi

summary vei_events_test
