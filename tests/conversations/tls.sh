# tls(): TLS 1.2 over IPv4, TLS 1.3 over IPv6. Every ClientHello asks for the sni given; each
# session's handshake messages come in the order of its version; 1.2 shows the shipped certificate
# byte for byte (and tshark reads its CN); 1.3's ServerHello selects 0x0304; each session ends with
# the client's close_notify (an alert record in 1.2, 19 bytes of application data in 1.3).
sni=www.veipipe.example
call() {
  local src=10.1.0.1 dst=10.2.0.1-10.2.0.4 version=1.2
  [[ $1 == 6 ]] && src=2001:db8::1 dst=2001:db8:1::1-2001:db8:1::4 version=1.3
  echo "tls(sni=$sni, version=$version, src=$src, dst=$dst, sport=34981-44320, count=$2, rate=20pps)"
}
default_count=2000 # per IP version, to keep CI short; 5,000 (the driver's default) pass as well
proto='tls'
own_checks() {
  local v=$1 file="out$1.pcap" sessions
  sessions=$(tshark -n -r "$file" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
  # Per session: its SNIs, its handshake types, its certificates and the client's last record.
  local cert report
  cert=$(sed -n 's/^ *0x/0x/p' "$tests_dir/../stages/tls_certificate.inc" | tr -d ' ,\n' | sed 's/0x//g')  # as tshark prints it
  report=$(tshark -n -r "$file" -Y tls -T fields -E separator='|' -E occurrence=a -E aggregator=, \
    -e tcp.stream -e tcp.dstport -e tls.handshake.extensions_server_name -e tls.handshake.type \
    -e tls.handshake.certificate -e x509sat.uTF8String -e tls.handshake.extensions.supported_version \
    -e tls.record.content_type -e tls.record.length -e tls.record.opaque_type 2>/dev/null |
    awk -F'|' -v sni="$sni" -v cert="$cert" '
      { s = $1 }
      $3 != "" { hellos[s]++; if ($3 != sni) badsni++ }
      $4 != "" { types[s] = types[s] (types[s] == "" ? "" : ",") $4 }
      $5 != "" { certs++; if ($5 != cert) badcert++; if ($6 !~ /(^|,)veipipe\.example(,|$)/) badcn++ }
      $4 ~ /^2(,|$)/ { server_version[s] = $7 }
      # TLS 1.3 hides the content type: a record after ServerHello shows only its opaque type.
      $2 == 443 { n = split($10 != "" ? $10 : $8, t, ","); m = split($9, l, ","); last[s] = t[n] "/" l[m] }
      END {
        for (s in hellos) {
          sessions++
          if (hellos[s] != 1) badhello++
          seq[types[s]]++
          lasts[last[s]]++
          versions[server_version[s]]++
        }
        printf "sessions %d\nbad_sni %d\nbad_hellos %d\ncerts %d\nbad_certs %d\nbad_cn %d\n", sessions, badsni, badhello, certs, badcert, badcn
        for (k in seq) printf "types %s %d\n", k, seq[k]
        for (k in lasts) printf "last %s %d\n", k, lasts[k]
        for (k in versions) printf "server_version %s %d\n", k, versions[k]
      }')
  # TLS 1.2's ServerHello has no supported_versions: its version field is empty.
  local types='1,2,11,12,14,16' last='21/26' certs=$sessions version=''
  [[ $v == 6 ]] && types='1,2' last='23/19' certs=0 version='0x0304'
  local expected
  expected=$(printf '%s\n' "sessions $sessions" 'bad_sni 0' 'bad_hellos 0' "certs $certs" 'bad_cn 0' 'bad_certs 0' \
    "types $types $sessions" "last $last $sessions" "server_version $version $sessions")
  if [[ $sessions -gt 0 && $(sort <<<"$report") == $(sort <<<"$expected") ]]; then pass; else
    fail "IPv$v: the TLS sessions are not as expected ($sessions TCP connections)" "got: ${report//$'\n'/; }" \
      "expected: ${expected//$'\n'/; }"
  fi
}
