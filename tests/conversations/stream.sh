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
  local v=$1 flow="flow$1" n bad request response
  mkdir -p "$flow" && tcpflow -r "out$v.pcap" -o "$flow" >/dev/null 2>&1
  request=$(md5sum <"$data/request.bin") response=$(md5sum <"$data/response.bin")
  # One md5sum over thousands of files, not a cmp each: forking per file took half this test's time.
  read -r n bad < <(cd "$flow" && find . -maxdepth 1 -type f -name '*00009*' -print0 | xargs -0r md5sum |
    awk -v request="${request%% *}" -v response="${response%% *}" '
      $2 ~ /\.00009-/ { n++; bad += $1 != response; next }
      $2 ~ /-.*\.00009$/ { n++; bad += $1 != request }
      END { print n + 0, bad + 0 }')
  if [[ $n -gt 0 && $bad == 0 ]]; then pass; else fail "IPv$v: $bad of $n reassembled directions differ from their files"; fi
}
