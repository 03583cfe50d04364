# synscan(): every scan sends one SYN to each listed port, in a shuffled order, from one client
# port; an open port answers SYN-ACK and the client resets it (RST, its seq the SYN-ACK's ack), a
# closed one answers RST-ACK (its ack the SYN's seq + 1).
#
# 10 scans of 1,000 ports (9 open): 20,090 frames per IP version.
default_count=10
open_ports='22,80,443,990-995'
call() {
  local src=10.1.0.1 dst=10.2.0.1-10.2.0.4
  [[ $1 == 6 ]] && src=2001:db8::1 dst=2001:db8:1::1-2001:db8:1::4
  echo "synscan(src=$src, dst=$dst, ports=\"1-1000\", open=\"$open_ports\", sport=40000-49999, count=$2, rate=2pps)"
}
proto='tcp'
packets_per=$((2 * 1000 + 9))
# tshark's expert warns of every reset ("Connection reset (RST)", tcp.connection.rst): a scan's
# RST-ACKs and the client's RSTs are what it is made of, so the resets are excused. tshark raises
# no TCP analysis flag on a scan (every SYN has its own 4-tuple, every answer matches its SYN).
allowed='tcp.connection.rst'

own_checks() {
  local v=$1 bad
  bad=$(tshark -n -r "out$v.pcap" -T fields -E separator=, -e tcp.srcport -e tcp.dstport -e tcp.flags \
    -e tcp.seq_raw -e tcp.ack_raw 2>/dev/null |
    awk -F, -v count="$count" -v open_list="$open_ports" '
      function wrong(what) { if (shown++ < 5) print what ": " $0; bad++ }
      function next_seq(x) { return (x + 1) % 4294967296 }
      BEGIN {
        n = split(open_list, items, ",")
        for (i = 1; i <= n; i++) {
          if (split(items[i], r, "-") == 1) r[2] = r[1]
          for (p = r[1]; p <= r[2]; p++) open[p] = 1
        }
      }
      $3 == "0x0002" {  # SYN, client to server
        if (++syn[$1, $2] > 1 || $2 < 1 || $2 > 1000) wrong("a second SYN, or to a port not listed")
        if (last[$1] != "" && $2 > last[$1]) ascending[$1]++
        last[$1] = $2; seq[$1, $2] = $4; syns[$1]++
        next
      }
      $3 == "0x0012" {  # SYN-ACK, server to client
        if (!open[$1] || $5 != next_seq(seq[$2, $1])) wrong("SYN-ACK from a closed port or for no SYN")
        synack[$2, $1] = $5; opened[$2]++
        next
      }
      $3 == "0x0004" {  # the client resets the SYN-ACK
        if (!(($1, $2) in synack) || $4 != synack[$1, $2]) wrong("RST not answering a SYN-ACK")
        resets[$1]++
        next
      }
      $3 == "0x0014" {  # RST-ACK, server to client
        if (open[$1] || $5 != next_seq(seq[$2, $1])) wrong("RST-ACK from an open port or for no SYN")
        closed[$2]++
        next
      }
      { wrong("unexpected flags") }
      END {
        for (s in syns) {
          scans++
          if (syns[s] != 1000 || opened[s] != 9 || resets[s] != 9 || closed[s] != 991)
            wrong("scan from " s ": " syns[s] " SYN, " opened[s] " SYN-ACK, " resets[s] " RST, " closed[s] " RST-ACK")
          if (ascending[s] > 900) wrong("scan from " s ": ports in ascending order, not shuffled")
        }
        if (scans != count) wrong(scans " scans, expected " count)
        exit bad > 0
      }')
  if [[ $? == 0 ]]; then pass; else fail "IPv$v: scans wrong" "$bad"; fi
}
