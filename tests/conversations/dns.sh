# dns(): every response answers its query (same ID, back to the query's port, tshark links them),
# the question is the name asked, the flags are a stub resolver's and a recursive resolver's, and
# the answer is the one asked for. IPv4 looks up an A record, IPv6 an MX (its exchange compressed
# against the question); each version then checks two more lookups, 200 each, so that every type
# and a negative answer pass tshark too.
call() {
  if [[ $1 == 4 ]]; then
    echo "dns(name=api.example.org, answer=192.0.2.80, src=10.1.0.1-10.1.0.8, dst=10.2.0.53, count=$2, rate=2kpps, seed=7)"
  else
    echo "dns(name=www.example.com, type=MX, answer=20 mx.example.com, src=2001:db8::1-2001:db8::8, dst=2001:db8:1::53, count=$2, rate=2kpps)"
  fi
}
proto='dns'
packets_per=2

# check_lookups FILE COUNT NAME RCODE ANSWER FIELD...: COUNT queries and their responses, the
# answer fields (tab-joined) equal to ANSWER in every response.
check_lookups() {
  local file=$1 count=$2 name=$3 rcode=$4 answer=$5 field fields=()
  shift 5
  for field in "$@"; do fields+=(-e "$field"); done
  local verdict
  verdict=$(tshark -n -r "$file" -T fields -E separator=/t -e udp.srcport -e udp.dstport -e dns.id -e dns.flags \
    -e dns.qry.name -e dns.flags.rcode -e dns.response_to "${fields[@]}" 2>/dev/null | awk -F'\t' -v OFS='\t' \
    -v name="$name" -v rcode="$rcode" -v answer="$answer" -v count="$count" '
    function bad(why) { if (!nbad++) first = why " (frame " NR ")" }
    $5 != name { bad("question " $5) }
    $4 == "0x0100" { if ($1 in id) bad("a client port queried twice"); id[$1] = $3; ids[$3]; queries++; next }
    {
      if ($4 != sprintf("0x%04x", 33152 + rcode)) bad("response flags " $4)
      if (!($2 in id) || id[$2] != $3) bad("response ID " $3 " is not its query'"'"'s")
      if ($6 != rcode) bad("rcode " $6)
      if ($7 == "") bad("tshark links the response to no query")
      got = $8; for (i = 9; i <= NF; i++) got = got "\t" $i
      if (got != answer) bad("answer " got)
      responses++
    }
    END {
      if (queries != count || responses != count) bad(queries + 0 " queries, " responses + 0 " responses")
      n = 0; for (i in ids) n++
      if (count >= 100 && n < count / 2) bad("only " n " distinct IDs")
      if (nbad) print nbad " bad: " first
    }')
  if [[ -z $verdict ]]; then pass; else fail "$file: $name: $verdict"; fi
}

# extra V NAME CALL-ARGUMENTS RCODE ANSWER FIELD...: 200 more lookups, valid and as asked.
extra() {
  local v=$1 name=$2 args=$3 src=10.1.0.1 dst=10.2.0.53
  shift 3
  [[ $v == 6 ]] && src=2001:db8::1 dst=2001:db8:1::53
  extras=$((extras + 1))
  local file="extra$v-$extras.pcap"
  if ! "$veipipe" run -q -e "dns(name=$name, $args, src=$src, dst=$dst, count=200, rate=1kpps) -> file($file)" 2>run.err; then
    fail "IPv$v: dns($args)" "$(head -c 600 run.err)"
    return
  fi
  local problems
  problems=$(protocol_problems "$file")
  if [[ -z $problems ]]; then pass; else fail "IPv$v: dns($args): tshark finds problems" "$problems"; fi
  check_lookups "$file" 200 "$name" "$@"
}

extras=0
own_checks() {
  local v=$1
  if [[ $v == 4 ]]; then
    check_lookups out4.pcap "$count" api.example.org 0 192.0.2.80 dns.a
    # 300 bytes of TXT: two strings (255 + 45), which tshark lists comma-joined.
    local txt
    txt=$(printf 'v=DKIM1; k=rsa; p=%0282d' 0)
    extra 4 mail._domainkey.example.com "type=TXT, answer=$txt" 0 "${txt:0:255},${txt:255}" dns.txt
    extra 4 nowhere.example.net "type=AAAA, rcode=NXDOMAIN" 3 $'0\t1\tns1.example.net\thostmaster.example.net' \
      dns.count.answers dns.count.auth_rr dns.soa.mname dns.soa.rname
  else
    check_lookups out6.pcap "$count" www.example.com 0 $'20\tmx.example.com' dns.mx.preference dns.mx.mail_exchange
    extra 6 www.example.com "type=CNAME, answer=cdn.example.com" 0 cdn.example.com dns.cname
    extra 6 ipv6.example.com "type=AAAA, answer=2001:db8::80" 0 2001:db8::80 dns.aaaa
  fi
}
