# http(): IPv4 GETs a file from a Windows client (browser User-Agents) across 4 servers; IPv6
# POSTs a JSON file to port 8080 (Host with the port) and gets the built-in RSS feed back as 201.
# Checked beside the driver's validity checks: one request and one response per conversation with
# the method and status asked for (tshark), and, reassembled by tcpflow, every Content-Length equal
# to its body's length and the bodies equal to the files.
call() {
  if [[ $1 == 4 ]]; then
    echo "http(path=/greenhouse/index.html, response=$data/http-page.html, os=windows, src=10.1.0.1, dst=10.2.0.1-10.2.0.4, count=$2, rate=20pps)"
  else
    echo "http(method=POST, path=/api/readings, body=$data/http-upload.json, status=201, page=rss, os=macos, server_os=windows, src=2001:db8::1, dst=2001:db8:1::1-2001:db8:1::4, dport=8080, count=$2, rate=20pps)"
  fi
}
default_count=2000 # per IP version, to keep CI short; 5,000 (the driver's default) pass as well
proto='http'

own_checks() {
  local v=$1 out="out$1.pcap" seen want
  seen=$(tshark -n -r "$out" -Y http -T fields -e http.request.method -e http.response.code 2>/dev/null | sort | uniq -c | awk '{ $1 = $1 } 1' | paste -sd'|')
  want="$count 200|$count GET"
  [[ $v == 6 ]] && want="$count 201|$count POST"
  if [[ $seen == "$want" ]]; then pass; else fail "IPv$v: tshark sees (count method/status) '$seen', expected '$want'"; fi

  local flows="flows$v" verdict
  mkdir -p "$flows" && tcpflow -r "$out" -o "$flows" >/dev/null 2>&1
  verdict=$(python3 - "$flows" "$v" "$count" "$data" <<'PYTHON'
import os, re, sys
import xml.etree.ElementTree as ET
flows, v, count, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
page = open(f"{data}/http-page.html", "rb").read()
upload = open(f"{data}/http-upload.json", "rb").read()
server_port = "08080" if v == "6" else "00080"
requests = responses = 0
problems = []
for name in sorted(os.listdir(flows)):
    if not re.search(r"\.\d{5}-.*\.\d{5}$", name):
        continue
    raw = open(os.path.join(flows, name), "rb").read()
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("Content-Length", "0"))
    if not sep or length != len(body):
        problems.append(f"{name}: Content-Length {length}, body {len(body)} bytes")
    if name.endswith(server_port):
        requests += 1
        want = ("POST /api/readings" if v == "6" else "GET /greenhouse/index.html") + " HTTP/1.1"
        if lines[0] != want or body != (upload if v == "6" else b""):
            problems.append(f"{name}: request '{lines[0]}' with {len(body)} body bytes")
    else:
        responses += 1
        if v == "4":
            ok = lines[0] == "HTTP/1.1 200 OK" and headers.get("Content-Type") == "text/html; charset=utf-8" and body == page
        else:
            ok = lines[0] == "HTTP/1.1 201 Created" and headers.get("Content-Type") == "application/rss+xml" and ET.fromstring(body).tag == "rss"
        if not ok:
            problems.append(f"{name}: response '{lines[0]}' is not the one asked for")
if requests != count or responses != count:
    problems.append(f"{requests} requests and {responses} responses reassembled, expected {count} of each")
print("ok" if not problems else f"{len(problems)} problems: " + "; ".join(problems[:3]))
PYTHON
  )
  if [[ $verdict == ok ]]; then pass; else fail "IPv$v: tcpflow: $verdict"; fi
}
