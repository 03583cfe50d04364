# traceroute(): every trace's probes go out with TTL (hop limit) 1..hops, `probes` per TTL, each to
# the next port (udp) or with the next sequence number (icmp); router h answers Time Exceeded from
# its own address, the destination answers the last TTL (Port Unreachable or Echo Reply). The
# driver runs the UDP method; own_checks also runs the ICMP one (fewer traces) through the same
# tshark checks.
#
# 500 traces of 8 hops x 3 probes x 2 frames: 24,000 frames per IP version (and 200 ICMP traces:
# 9,600 frames), under a minute on a busy 2-core machine.
# The client ports are a range where tshark 4.0 registers no UDP dissector: from 40000 up it takes
# port 41170 for Manolito and calls the probes malformed.
default_count=500
hops=8 probes=3
call() { # call V COUNT [METHOD]
  local src=10.1.0.1 dst=10.2.0.1-10.2.0.4
  [[ $1 == 6 ]] && src=2001:db8::1 dst=2001:db8:1::1-2001:db8:1::4
  echo "traceroute(src=$src, dst=$dst, hops=$hops, probes=$probes, method=${3:-udp}, sport=50000-54327, count=$2, rate=100pps)"
}
proto='icmp || icmpv6 || udp'
packets_per=$((hops * probes * 2))

# One line per frame: kind (probe, exceeded, unreachable, reply), source, trace id (the UDP source
# port or ICMP identifier), probe number from 1 (from the UDP port or ICMP sequence), TTL. Fields
# are the outer packet's, but for an ICMP error's id and number: the quoted probe's.
hop_lines() { # hop_lines V FILE
  tshark -n -r "$2" -T fields -E separator=, -E occurrence=f -e ip.src -e ipv6.src -e ip.ttl -e ipv6.hlim \
    -e icmp.type -e icmpv6.type -e udp.srcport -e udp.dstport -e icmp.ident -e icmpv6.echo.identifier -e icmp.seq \
    -e icmpv6.echo.sequence_number 2>/dev/null |
    awk -F, -v v="$1" '{
      type = $5 $6
      if ($7 != "") { id = $7; n = $8 - 33433 } else { id = $9 $10; n = $11 $12 }
      if (type == "" || type == 8 || type == 128) kind = "probe"
      else if (type == 0 || type == 129) kind = "reply"
      else if ((v == 4 && type == 11) || (v == 6 && type == 3)) kind = "exceeded"
      else if ((v == 4 && type == 3) || (v == 6 && type == 1)) kind = "unreachable"
      else kind = "other:" type
      print kind, $1 $2, id, n, $3 $4
    }'
}

# check_trace V FILE COUNT FINAL: every trace as described above, FINAL the last hop's answer.
check_trace() {
  local v=$1 file=$2 count=$3 final=$4 bad
  bad=$(hop_lines "$v" "$file" | awk -v v="$v" -v hops="$hops" -v probes="$probes" -v count="$count" -v final="$final" '
    function router(h) { return v == 4 ? "10.254." h ".1" : sprintf("fd00:254:%x::1", h) }
    function wrong(what) { if (shown++ < 5) print what ": " $0; bad++ }
    {
      hop = int(($4 - 1) / probes) + 1
      if ($1 == "probe") {
        sent[$3]++
        if ($4 != sent[$3] || $5 != hop) wrong("probe out of order or with the wrong TTL")
      } else if ($1 == "exceeded") {
        exceeded[$3]++
        if (hop >= hops || $2 != router(hop)) wrong("Time Exceeded not from router " hop)
      } else if ($1 == final) {
        answered[$3]++
        if (hop != hops || $2 !~ (v == 4 ? "^10\\.2\\.0\\." : "^2001:db8:1::")) wrong("last answer not from the destination")
      } else wrong("unexpected frame")
    }
    END {
      for (id in sent) {
        traces++
        if (sent[id] != hops * probes || exceeded[id] != (hops - 1) * probes || answered[id] != probes)
          wrong("trace " id ": " sent[id] " probes, " exceeded[id] " Time Exceeded, " answered[id] " " final)
      }
      if (traces != count) wrong(traces " traces, expected " count)
      exit bad > 0
    }')
  if [[ $? == 0 ]]; then pass; else fail "IPv$v: $file: traces wrong" "$bad"; fi
}

own_checks() {
  local v=$1 icmp_count=200
  check_trace "$v" "out$v.pcap" "$count" unreachable
  if ! timeout "$limit" "$veipipe" run -q -e "$(call "$v" "$icmp_count" icmp) -> file(icmp$v.pcap)" 2>run.err; then
    fail "IPv$v: method=icmp run" "$(head -c 600 run.err)"
    return
  fi
  local problems n
  problems=$(protocol_problems "icmp$v.pcap")
  if [[ -z $problems ]]; then pass; else fail "IPv$v: method=icmp: tshark finds problems" "$problems"; fi
  n=$(undissected "icmp$v.pcap" "$proto")
  if [[ $n == 0 ]]; then pass; else fail "IPv$v: method=icmp: $n frames with payload not dissected as $proto"; fi
  check_trace "$v" "icmp$v.pcap" "$icmp_count" reply
}
