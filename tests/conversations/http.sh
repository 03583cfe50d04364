# http(): IPv4 GETs a file from a Windows client (browser User-Agents) across 4 servers; IPv6
# POSTs a JSON file to port 8080 (Host with the port) and gets the built-in RSS feed back as 201.
# Checked beside the driver's validity checks: one request and one response per conversation,
# the status asked for, every Content-Length equal to the body's length, and the bodies tshark
# exports equal to the files.
call() {
  if [[ $1 == 4 ]]; then
    echo "http(path=/greenhouse/index.html, response=$data/http-page.html, os=windows, src=10.1.0.1, dst=10.2.0.1-10.2.0.4, count=$2, rate=20pps)"
  else
    echo "http(method=POST, path=/api/readings, body=$data/http-upload.json, status=201, page=rss, os=macos, server_os=windows, src=2001:db8::1, dst=2001:db8:1::1-2001:db8:1::4, dport=8080, count=$2, rate=20pps)"
  fi
}
proto='http'
packets_per=''

# count_of FILE FILTER: frames of FILE matching FILTER.
count_of() { tshark -n -r "$1" -Y "$2" 2>/dev/null | wc -l; }

own_checks() {
  local v=$1 out="out$1.pcap" code=200 requests responses
  [[ $v == 6 ]] && code=201
  requests=$(count_of "$out" http.request)
  responses=$(count_of "$out" "http.response.code == $code")
  if [[ $requests == "$count" && $responses == "$count" ]]; then pass; else
    fail "IPv$v: $requests requests and $responses responses with status $code, expected $count of each"
  fi
  # Every body tshark reassembles (at the length Content-Length gives) equals the file asked for,
  # or is the built-in feed.
  local objects="objects$v" f files=0 feeds=0 bad=0
  mkdir -p "$objects" && tshark -n -r "$out" --export-objects "http,$objects" >/dev/null 2>&1
  for f in "$objects"/*; do
    if cmp -s "$f" "$data/http-page.html" || cmp -s "$f" "$data/http-upload.json"; then
      files=$((files + 1))
    elif [[ $v == 6 ]] && head -2 "$f" | grep -q '^<rss version="2.0">$' && tail -1 "$f" | grep -q '^</rss>$'; then
      feeds=$((feeds + 1))
    else
      bad=$((bad + 1))
    fi
  done
  if [[ $bad == 0 && $files == "$count" && $feeds == $((v == 6 ? count : 0)) ]]; then pass; else
    fail "IPv$v: of the bodies tshark exports, $files equal their file and $feeds are feeds, $bad are neither"
  fi
  # Content-Length: the file's size, or (for the feeds) the sizes of the feeds exported.
  local lengths expected
  lengths=$(tshark -n -r "$out" -Y "http.response.code == $code" -T fields -e http.content_length 2>/dev/null | sort -u)
  if [[ $v == 4 ]]; then
    expected=$(stat -c %s "$data/http-page.html")
  else
    expected=$(for f in "$objects"/*; do cmp -s "$f" "$data/http-upload.json" || stat -c %s "$f"; done | sort -u)
    lengths+=$'\n'$(tshark -n -r "$out" -Y http.request -T fields -e http.content_length 2>/dev/null | sort -u)
    expected+=$'\n'$(stat -c %s "$data/http-upload.json")
  fi
  if [[ $lengths == "$expected" ]]; then pass; else fail "IPv$v: Content-Length values $(echo $lengths), expected $(echo $expected)"; fi
}
