# stream(): both directions reassembled (tcpflow) equal their files, for every client port. The
# client ports avoid those tshark gives a protocol (57000 is IRC's): the discard port (9) has
# none, so tshark would try the client port's.
call() {
  local src=10.1.0.1 dst=10.2.0.1-10.2.0.4
  [[ $1 == 6 ]] && src=2001:db8::1 dst=2001:db8:1::1-2001:db8:1::4
  echo "stream($data/request.bin, response=$data/response.bin, src=$src, dst=$dst, sport=34981-44320, count=$2, rate=20pps)"
}
default_count=2000 # per IP version, to keep CI short; 5,000 (the driver's default) pass as well
proto='data'
own_checks() {
  local v=$1 flow="flow$1" n=0 bad=0 f
  mkdir -p "$flow" && tcpflow -r "out$v.pcap" -o "$flow" >/dev/null 2>&1
  for f in "$flow"/*; do
    case $f in
      *.00009-*) cmp -s "$f" "$data/response.bin" || bad=$((bad + 1)) ;;
      *-*.00009) cmp -s "$f" "$data/request.bin" || bad=$((bad + 1)) ;;
      *) continue ;;
    esac
    n=$((n + 1))
  done
  if [[ $n -gt 0 && $bad == 0 ]]; then pass; else fail "IPv$v: $bad of $n reassembled directions differ from their files"; fi
}
