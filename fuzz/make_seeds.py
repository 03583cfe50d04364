#!/usr/bin/env python3
"""Lays out the seed corpora of the fuzz targets under OUT/<target>/, from the repository's tests and
shared/corpus, so that the seeds follow the tests as they change:

  description  every string literal of tests/test_*.cpp and every quoted string of tests/*.sh that
               looks like a pipeline description (a stage call or an arrow)
  control      the same texts as control-socket lines (one per seed, newline ended), the lines the
               control tests send, and a few multi-line conversations
  pcap         every file of shared/corpus (the classic pcap reader's own and the others that
               open_capture turns away or hands to libpcap), cut to its first 64 KiB
  pcapng       the pcapng files of shared/corpus, cut likewise
  flow_id      the first frames of the classic pcap files of shared/corpus whose link type flow_id
               decodes, each after the byte that picks that link type (fuzz/harness.h)
  script       the script files the golden cases of script() write (tests/golden/script/*.case,
               their `cat >F <<'END'` blocks)

usage: make_seeds.py REPO CORPUS OUT
"""
import hashlib
import pathlib
import re
import struct
import sys

MAX_CAPTURE = 64 * 1024
FLOW_LINKTYPES = [1, 101, 113, 228, 229, 276]  # fuzz/harness.h flow_linktypes, in its order
FLOW_FRAMES = 20  # per file

def stage_names(repo):
    """The registry's list of built-in stages (stages/list.h): `X(name)` lines."""
    return re.findall(r"^\s*X\((\w+)\)", (repo / "stages" / "list.h").read_text(), re.M)


def cpp_literals(text):
    """String literals of a C++ source, adjacent ones joined, escapes resolved (roughly)."""
    token = re.compile(r'R"([^(\s]*)\((.*?)\)\1"|"((?:[^"\\\n]|\\.)*)"|//[^\n]*|/\*.*?\*/|\'(?:[^\'\\]|\\.)\'', re.S)
    out, current, last_end = [], None, 0
    for m in token.finditer(text):
        between = text[last_end:m.start()]
        is_literal = m.group(2) is not None or m.group(3) is not None
        if current is not None and (not is_literal or between.strip()):
            out.append(current)
            current = None
        last_end = m.end()
        if not is_literal:
            continue
        if m.group(2) is not None:
            value = m.group(2)
        else:
            value = m.group(3)
            value = re.sub(r'\\(["\\\'?])', r'\1', value)
            value = value.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")
        current = (current or "") + value
    if current is not None:
        out.append(current)
    return out


def shell_strings(text):
    return [m.group(1) or m.group(2) or "" for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'', text, re.S)]


def looks_like_description(s, stages):
    return "->" in s or any(re.search(rf"\b{stage}\s*\(", s) for stage in stages)


def write(directory, data):
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_frames(data):
    """The link type and the frames of a classic pcap (either byte order, us or ns), as far as whole."""
    orders = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
    order = orders.get(data[:4])
    if order is None or len(data) < 24:
        return None, []
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0xFFFF
    frames, at = [], 24
    while at + 16 <= len(data) and len(frames) < FLOW_FRAMES:
        caplen = struct.unpack(order + "I", data[at + 8:at + 12])[0]
        if at + 16 + caplen > len(data):
            break
        frames.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    return linktype, frames


def main():
    repo, corpus, out = map(pathlib.Path, sys.argv[1:4])
    stages = stage_names(repo)
    texts = set()
    for path in sorted((repo / "tests").glob("test_*.cpp")):
        texts.update(s for s in cpp_literals(path.read_text(errors="replace")) if looks_like_description(s, stages))
    for path in sorted((repo / "tests").glob("*.sh")):
        texts.update(s for s in shell_strings(path.read_text(errors="replace")) if looks_like_description(s, stages))
    texts.discard("")
    for t in texts:
        write(out / "description", t)
        write(out / "control", t.replace("\n", " ") + "\n")
    for line in ["icmp(dst=10.0.0.9, count=3, rate=100pps)\n", "icmp(dst=10.0.0.1-10.0.0.3, src=10.1.0.1-10.1.0.2, "
                 "count=5, replies=true, rtt=2ms, size=0, ttl=1, id=0, srcmac=aa:bb:cc:dd:ee:ff)\n",
                 "icmpp(dst=10.0.0.9)\n", "merge\n", "icmp 1\nicmp 2\r\nbogus\n\nicmp 3\n",
                 "\xff\xfe\x01\x80zz\n", "icmp\0x\n", "icmp(dst=10.0.0.7, cou",
                 "pcap(a.pcap) -> file(b.pcap)\n", "icmp(dst=10.0.0.9, rate=1e-9pps)\n"]:
        write(out / "control", line.encode("latin-1"))
    # Lines around the harness's small line limit (16 + the first byte), so the overlong case is near.
    write(out / "control", "\x10" + "x" * 31 + "\nicmp 2\n" + "y" * 33 + "\nicmp 3\n")
    for path in sorted(corpus.iterdir()):
        if path.name in ("MANIFEST.tsv", "SHA256SUMS") or not path.is_file():
            continue
        data = path.read_bytes()[:MAX_CAPTURE]
        write(out / "pcap", data)  # all of them: open_capture sorts them out by their magic
        if data[:4] == b"\x0a\x0d\x0d\x0a":
            write(out / "pcapng", data)
        linktype, frames = pcap_frames(data)
        for frame in frames if linktype in FLOW_LINKTYPES else []:
            write(out / "flow_id", bytes([FLOW_LINKTYPES.index(linktype)]) + frame)
    for case in sorted((repo / "tests" / "golden" / "script").glob("*.case")):
        for block in re.findall(r"<<'END'\n(.*?)^END$", case.read_text(), re.S | re.M):
            write(out / "script", block)
    for target in ("description", "control", "pcap", "pcapng", "flow_id", "script"):
        print(f"{target}: {len(list((out / target).iterdir()))} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
