# sip(): every call is its 7 messages in order (INVITE, 100, 180, 200, ACK, BYE, 200) under one
# Call-ID, with the CSeq of each, one From tag, the To tag from 180 on, an SDP body exactly in the
# INVITE and the 200 to it whose c= address is its sender's, and every Content-Length the size of
# its body; tshark's SIP statistics count the messages, none resent. IPv4 uses the default
# parties, IPv6 named ones with hosts (one an address in brackets).
call() {
  if [[ $1 == 4 ]]; then
    echo "sip(src=10.1.0.1-10.1.0.8, dst=10.2.0.1, count=$2, rate=500pps, duration=2s)"
  else
    echo "sip(from=carol@example.com, to=dave@[2001:db8:1::5], src=2001:db8::1-2001:db8::8, dst=2001:db8:1::5, count=$2, rate=500pps)"
  fi
}
proto='sip'
packets_per=7

own_checks() {
  local v=$1 file="out$1.pcap" ip=ip
  [[ $v == 6 ]] && ip=ipv6
  local verdict
  verdict=$(tshark -n -r "$file" -T fields -E separator=/t -e sip.Call-ID -e sip.Method -e sip.Status-Code -e sip.CSeq \
    -e sip.from.tag -e sip.to.tag -e sdp.connection_info.address -e $ip.src 2>/dev/null | awk -F'\t' -v count="$count" '
    BEGIN {
      split("INVITE 100 180 200 ACK BYE 200", what, " ")
      split("1 INVITE,1 INVITE,1 INVITE,1 INVITE,1 ACK,2 BYE,2 BYE", cseq, ",")
    }
    function bad(why) { if (!nbad++) first = why " (frame " NR ", Call-ID " $1 ")" }
    {
      i = ++step[$1]
      if (i == 1) calls++
      if (i > 7) { bad("more than 7 messages"); next }
      if ($2 $3 != what[i]) bad("message " i " is " $2 $3)
      if ($4 != cseq[i]) bad("CSeq " $4)
      if (i == 1) from[$1] = $5; else if ($5 != from[$1]) bad("From tag changed")
      if (i < 3 && $6 != "") bad("To tag before 180")
      if (i == 3) to[$1] = $6; else if (i > 3 && ($6 == "" || $6 != to[$1])) bad("To tag " $6)
      sdp = i == 1 || i == 4
      if (sdp && $7 != $8) bad("SDP c= " $7 " from " $8)
      if (!sdp && $7 != "") bad("SDP in message " i)
    }
    END {
      if (calls != count) bad(calls + 0 " Call-IDs")
      for (c in step) if (step[c] != 7) { bad("a call of " step[c] " messages"); break }
      if (nbad) print nbad " bad: " first
    }')
  if [[ -z $verdict ]]; then pass; else fail "IPv$v: $verdict"; fi

  # Content-Length counts the bytes after the blank line that ends the headers (hex 0d0a0d0a).
  local lengths
  lengths=$(tshark -n -r "$file" -T fields -e sip.Content-Length -e udp.payload 2>/dev/null | awk -F'\t' '
    { i = index($2, "0d0a0d0a"); if (i == 0 || (length($2) - (i + 7)) / 2 != $1) n++ } END { print n + 0 }')
  if [[ $lengths == 0 ]]; then pass; else fail "IPv$v: $lengths messages whose Content-Length is not their body's"; fi

  local stat expected
  stat=$(tshark -n -q -r "$file" -z sip,stat 2>/dev/null | awk '/^ *(SIP 200 OK|SIP 180 Ringing|SIP 100 Trying|INVITE|ACK|BYE|Number of resent)/ { $1 = $1; print }' | sort)
  expected=$(printf '%s\n' "Number of resent SIP messages: 0" "ACK : $count Packets" "BYE : $count Packets" "INVITE : $count Packets" \
    "SIP 100 Trying : $count Packets" "SIP 180 Ringing : $count Packets" "SIP 200 OK : $((2 * count)) Packets" | sort)
  if [[ $stat == "$expected" ]]; then pass; else fail "IPv$v: tshark -z sip,stat" "$stat"; fi
}
