#!/usr/bin/env python3
"""The generation benchmark's peer (benchmarks/generation.sh): Scapy building the conversations the
veipipe stages generate, COUNT times, written with wrpcap to /dev/null. One builder per stage; each
conversation i has its own client port, as veipipe's repetitions do. Payloads are Raw bytes of the
sizes veipipe sends (Scapy's protocol layers would only make the peer slower).

usage: scapy_peers.py STAGE COUNT RUNS [REQUEST RESPONSE]
  REQUEST, RESPONSE: the files `stream` sends (its builder only)
prints: `conversation N` (packets in one conversation), then `run PACKETS SECONDS` per run, timed
from the first packet built to the end of wrpcap (Scapy's import not included).
"""
import sys
import time

from scapy.all import DNS, DNSQR, DNSRR, ICMP, IP, TCP, UDP, Ether, IPerror, Raw, wrpcap

CLIENT, SERVER, ROUTER = "10.255.0.1", "10.255.0.2", "10.254.0.1"
MSS = 1460


def eth():
    return Ether(src="02:00:0a:ff:00:01", dst="02:00:0a:ff:00:02")


def tcp_conversation(sport, dport, messages):
    """Handshake, each (from_client, bytes) message in MSS segments, then FIN/ACK, FIN/ACK, ACK: the
    shape of core/tcp_conversation. The receiver ACKs every second segment, and a message's last
    one unless its own next message carries the ACK; empty bytes are a pure ACK (a delayed one)."""
    seq = {True: 1000, False: 5000}
    out = []

    def send(from_client, flags, payload=b""):
        src, dst, sp, dp = (CLIENT, SERVER, sport, dport) if from_client else (SERVER, CLIENT, dport, sport)
        p = eth() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq[from_client],
                                                ack=seq[not from_client], window=64240)
        if payload:
            p = p / Raw(payload)
        out.append(p)
        seq[from_client] += len(payload) + (1 if "S" in flags or "F" in flags else 0)

    send(True, "S")
    send(False, "SA")
    send(True, "A")
    for m, (from_client, data) in enumerate(messages):
        if not data:
            send(from_client, "A")
            continue
        segments = [data[i:i + MSS] for i in range(0, len(data), MSS)]
        reply_follows = m + 1 < len(messages) and messages[m + 1][0] != from_client
        for n, segment in enumerate(segments, 1):
            send(from_client, "PA" if n == len(segments) else "A", segment)
            if n % 2 == 0 or (n == len(segments) and not reply_follows):
                send(not from_client, "A")
    send(True, "FA")
    send(False, "FA")
    send(True, "A")
    return out


def udp_exchange(sport, dport, messages):
    """(from_client, payload) datagrams between the client and the server."""
    return [eth() / (IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=dport) if c
                     else IP(src=SERVER, dst=CLIENT) / UDP(sport=dport, dport=sport)) / payload
            for c, payload in messages]


def stream(i, request, response):
    return tcp_conversation(49152 + i, 9, [(True, request), (False, response)])


def http(i):
    body = b"x" * 1024
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1024\r\n\r\n"
    get = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: veipipe\r\nAccept: */*\r\n\r\n"
    return tcp_conversation(49152 + i, 80, [(True, get), (False, head + body)])


def dns(i):
    query = DNS(id=i & 0xFFFF, rd=1, qd=DNSQR(qname="www.example.com"))
    answer = DNS(id=i & 0xFFFF, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com"),
                 an=DNSRR(rrname="www.example.com", rdata="93.184.216.34"))
    return udp_exchange(49152 + i, 53, [(True, query), (False, answer)])


def sip(i):
    lines = [(True, "INVITE"), (False, "SIP/2.0 100 Trying"), (False, "SIP/2.0 180 Ringing"), (False, "SIP/2.0 200 OK"),
             (True, "ACK"), (True, "BYE"), (False, "SIP/2.0 200 OK")]
    headers = "\r\nVia: SIP/2.0/UDP 10.255.0.1\r\nCall-ID: %d@veipipe\r\nCSeq: 1\r\nContent-Length: 0\r\n\r\n" % i
    return udp_exchange(49152 + i, 5060, [(c, Raw((m + headers).encode())) for c, m in lines])


def smtp(i):
    dialogue = [(False, b"220 mail.example.com ESMTP\r\n"), (True, b"EHLO client.example.com\r\n"),
                (False, b"250-mail.example.com\r\n250 SIZE 10240000\r\n"), (True, b"MAIL FROM:<a@example.com>\r\n"),
                (False, b"250 OK\r\n"), (True, b"RCPT TO:<b@example.com>\r\n"), (False, b"250 OK\r\n"),
                (True, b"DATA\r\n"), (False, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
                (True, b"Subject: test\r\n\r\n" + b"y" * 1000 + b"\r\n.\r\n"), (False, b"250 OK: queued\r\n"),
                (True, b"QUIT\r\n"), (False, b"221 Bye\r\n")]
    return tcp_conversation(49152 + i, 25, dialogue)


def ssh(i, keystrokes=20):
    """Banners, key exchange, authentication and the shell's start, then `keystrokes` keys typed and
    echoed (the client's delayed ACK after each echo), Ctrl-D and the channel's close."""
    c, s = True, False
    setup = [(s, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), (c, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
             (c, b"\0" * 1500), (s, b"\0" * 1100), (c, b"\0" * 48), (s, b"\0" * 560), (c, b"\0" * 16),
             (s, b"\0" * 16), (c, b"\0" * 52), (s, b"\0" * 52), (c, b"\0" * 420), (s, b"\0" * 36),
             (c, b"\0" * 112), (s, b"\0" * 36), (c, b"\0" * 400), (s, b"\0" * 500)]
    typing = [(c, b"\0" * 36), (s, b"\0" * 36), (c, b"")] * keystrokes
    close = [(c, b"\0" * 36), (s, b"\0" * 100), (c, b"\0" * 36), (s, b"\0" * 36)]
    return tcp_conversation(49152 + i, 22, setup + typing + close)


def tls(i):
    records = [(True, b"\x16\x03\x01" + b"\0" * 514), (False, b"\x16\x03\x03" + b"\0" * 4000),
               (True, b"\x14\x03\x03" + b"\0" * 80), (False, b"\x14\x03\x03" + b"\0" * 300),
               (True, b"\x17\x03\x03" + b"\0" * 400), (False, b"\x17\x03\x03" + b"\0" * 2000)]
    return tcp_conversation(49152 + i, 443, records)


def traceroute(i, hops=8, probes=3):
    """`probes` UDP probes per TTL 1..hops (veipipe's defaults), each answered by a time exceeded quoting
    it, the server's by port unreachable."""
    out = []
    for n in range(hops * probes):
        ttl = n // probes + 1
        probe = IP(src=CLIENT, dst=SERVER, ttl=ttl) / UDP(sport=49152 + i, dport=33434 + n) / Raw(b"\0" * 32)
        out.append(eth() / probe)
        last = ttl == hops
        reply = IP(src=SERVER if last else ROUTER, dst=CLIENT) / ICMP(type=3 if last else 11, code=3 if last else 0)
        out.append(eth() / reply / IPerror(bytes(probe)))
    return out


def synscan(i, ports=range(1, 101), open_ports=(22, 80)):
    """A SYN per port (generation.sh scans 1-100); an open port answers SYN-ACK and is reset, a closed
    one answers RST-ACK."""
    out = []
    for port in ports:
        out.append(eth() / IP(src=CLIENT, dst=SERVER) / TCP(sport=49152 + i, dport=port, flags="S", seq=1000))
        if port in open_ports:
            out.append(eth() / IP(src=SERVER, dst=CLIENT) / TCP(sport=port, dport=49152 + i, flags="SA", seq=5000, ack=1001))
            out.append(eth() / IP(src=CLIENT, dst=SERVER) / TCP(sport=49152 + i, dport=port, flags="R", seq=1001))
        else:
            out.append(eth() / IP(src=SERVER, dst=CLIENT) / TCP(sport=port, dport=49152 + i, flags="RA", ack=1001))
    return out


def icmp(i):
    payload = Raw(b"\0" * 56)
    return [eth() / IP(src=CLIENT, dst=SERVER) / ICMP(type=8, id=30309, seq=i + 1) / payload,
            eth() / IP(src=SERVER, dst=CLIENT) / ICMP(type=0, id=30309, seq=i + 1) / payload]


BUILDERS = {f.__name__: f for f in (stream, http, dns, sip, smtp, ssh, tls, traceroute, synscan, icmp)}


def main():
    stage, count, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = [open(path, "rb").read() for path in sys.argv[4:]]
    build = BUILDERS[stage]
    print("conversation", len(build(0, *extra)))
    for _ in range(runs):
        start = time.perf_counter()
        packets = []
        for i in range(count):
            for n, p in enumerate(build(i, *extra)):
                p.time = 1700000000 + i * 0.001 + n * 1e-5
                packets.append(p)
        wrpcap("/dev/null", packets)
        print("run", len(packets), f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
