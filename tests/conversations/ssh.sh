# ssh(): both banners, the key exchange in the clear (KEXINIT both ways, ECDH init from the client
# and reply from the server, NEWKEYS both ways), then encrypted packets both ways, per connection.
call() {
  local src=10.1.0.1 dst=10.2.0.1-10.2.0.4
  [[ $1 == 6 ]] && src=2001:db8::1 dst=2001:db8:1::1-2001:db8:1::4
  echo "ssh(keystrokes=4, version=OpenSSH_9.6, src=$src, dst=$dst, count=$2, rate=50pps)"
}
proto='ssh'
default_count=1000
# tshark 4.0 reads no ssh-ed25519 signature blob (only ssh-rsa and ssh-dss ones; later versions
# show any other as data) and warns on every KEX_ECDH_REPLY signed with one, real OpenSSH captures
# included. That warning, alone in its frame and for a signature of the right length, is excused.
allowed='_ws.expert.message == "Decoded 19 bytes, but packet legnth is 83 bytes" && count(_ws.expert.message) == 1
  && ssh.host_sig.type == "ssh-ed25519" && ssh.host_sig.length == 83'
own_checks() {
  local v=$1 n
  n=$(tshark -n -r "out$v.pcap" -Y ssh.protocol -T fields -e ssh.protocol 2>/dev/null | sort | uniq -c | awk '{ $1 = $1 } 1' | tr '\n' '|')
  if [[ $n == "$count SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3|$count SSH-2.0-OpenSSH_9.6|" ]]; then pass; else
    fail "IPv$v: banners: $n"
  fi
  # Per connection, the codes each side sends in the clear: tcp.dstport 22 is the client's.
  n=$(tshark -n -r "out$v.pcap" -Y ssh.message_code -T fields -e tcp.stream -e tcp.dstport -e ssh.message_code 2>/dev/null |
    awk -F'\t' '{ k = $1 ($2 == 22 ? " client" : " server"); seen[k] = seen[k] "," $3 }
      END { for (k in seen) if (seen[k] == (k ~ /client/ ? ",20,30,21" : ",20,31,21")) ok++; print ok + 0 }')
  if [[ $n == $((2 * count)) ]]; then pass; else fail "IPv$v: $n of $((2 * count)) directions send KEXINIT, ECDH, NEWKEYS in order"; fi
  # tshark 4.0 names no field in a chacha20-poly1305 packet it cannot decrypt: the encrypted part
  # is the SSH segments with neither a banner nor a message code.
  n=$(tshark -n -r "out$v.pcap" -Y 'ssh && tcp.len > 0 && !ssh.protocol && !ssh.message_code' -T fields \
    -e tcp.stream -e tcp.dstport 2>/dev/null | awk -F'\t' '{ seen[$1 " " ($2 == 22)] = 1 } END { print length(seen) }')
  if [[ $n == $((2 * count)) ]]; then pass; else fail "IPv$v: $n of $((2 * count)) directions carry encrypted packets"; fi
  # Without keys, tshark 4.0 still decrypts the length at the start of each encrypted segment with
  # an all-zero key; one read as at most 32768 bytes makes a malformed packet 1 time in 131,072
  # (stages/ssh.cpp, keep_length_implausible). Its debug log shows every length it read: each one
  # must exceed 32768, and there must be one for each segment of encrypted data at least.
  local segments
  segments=$(tshark -n -r "out$v.pcap" -Y 'ssh && tcp.len > 0 && !ssh.protocol && !ssh.message_code' 2>/dev/null | wc -l)
  n=$(zero_key_lengths "out$v.pcap")
  if [[ $segments -gt 0 && ${n% *} -ge $segments && ${n#* } == 0 ]]; then pass; else
    fail "IPv$v: tshark's zero-key length readings (read, at most 32768): $n for $segments segments"
  fi
  # Without the redraw, the 1,065th of these sessions had a segment read as 17,657 bytes, which
  # tshark reported as malformed.
  if [[ $v == 4 ]]; then
    local known='ssh(keystrokes=20, src=10.1.0.1, dst=10.2.0.1-10.2.0.4, count=1065, rate=50pps)'
    "$veipipe" run -q -e "$known -> file(known.pcap)" 2>run.err
    n=$(zero_key_lengths known.pcap)
    if [[ ${n% *} -gt 60000 && ${n#* } == 0 ]]; then pass; else fail "$known: zero-key length readings (read, at most 32768): $n"; fi
  fi
}

# Prints how many lengths tshark decrypted with its zero key in FILE, and how many of them are
# plausible (at most 32768).
zero_key_lengths() {
  tshark -n -r "$1" -o ssh.debug_file:ssh-debug.txt >/dev/null 2>&1
  awk '/ plain for seq = / { read++; if ($NF <= 32768) low++ } END { print read + 0, low + 0 }' ssh-debug.txt
}
