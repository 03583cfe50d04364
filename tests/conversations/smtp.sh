# smtp(): per connection the commands in RFC 5321's order with one RCPT per recipient, the
# recipients asked for, the Subject tshark's IMF dissector reads, and the message body (the client's
# direction reassembled by tcpflow, dot-stuffing undone) equal to body= with CRLF line ends. The
# body has lines that start with dots, an empty line and a last line left unended.
body='Hi Bob,\\n\\n.hidden line\\n..two dots\\n.\\nThanks, Alice'
expected_body=$'Hi Bob,\r\n\r\n.hidden line\r\n..two dots\r\n.\r\nThanks, Alice\r\n'
call() {
  local src=10.1.0.1 dst=10.2.0.1-10.2.0.4
  [[ $1 == 6 ]] && src=2001:db8::1 dst=2001:db8:1::1-2001:db8:1::4
  echo "smtp(to=\"bob@example.org, carol@example.net\", subject=\"Quarterly figures\", body=\"$body\", src=$src, dst=$dst, count=$2, rate=50pps)"
}
proto='smtp || imf'
default_count=3000
own_checks() {
  local v=$1 n bad
  n=$(tshark -n -r "out$v.pcap" -Y smtp.req.command -T fields -e tcp.stream -e smtp.req.command -e smtp.req.parameter 2>/dev/null |
    awk -F'\t' '{ seen[$1] = seen[$1] " " $2 ($2 == "RCPT" ? ":" $3 : "") }
      END { for (s in seen) if (seen[s] == " EHLO MAIL RCPT:TO:<bob@example.org> RCPT:TO:<carol@example.net> DATA QUIT") ok++; print ok + 0 }')
  if [[ $n == "$count" ]]; then pass; else fail "IPv$v: $n of $count connections send EHLO MAIL RCPT RCPT DATA QUIT to the recipients"; fi
  n=$(tshark -n -r "out$v.pcap" -Y 'imf.subject == "Quarterly figures" && imf.to == "bob@example.org, carol@example.net"' 2>/dev/null | wc -l)
  if [[ $n == "$count" ]]; then pass; else fail "IPv$v: $n of $count messages with the Subject and To asked for"; fi
  mkdir -p "flow$v" && tcpflow -r "out$v.pcap" -o "flow$v" >/dev/null 2>&1
  bad=$(EXPECTED=$expected_body perl -0777 -ne '
    if (/\r\nDATA\r\n.*?\r\n\r\n(.*?\r\n)\.\r\nQUIT\r\n$/s) { my $b = $1; $b =~ s/^\.//mg; $ok++ if $b eq $ENV{EXPECTED} }
    $n++; END { print $n - $ok, " of ", $n + 0 }' "flow$v"/*-*.00025)
  if [[ $bad == "0 of $count" ]]; then pass; else fail "IPv$v: $bad reassembled messages have a body other than body="; fi
}
