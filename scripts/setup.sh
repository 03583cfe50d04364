#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test veipipe. Idempotent: it asks apt
# only for packages that are missing, so a second run costs a few dpkg queries.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libpcap-dev libtbb-dev libfmt-dev doctest-dev libcli11-dev libbenchmark-dev
  zlib1g-dev libzstd-dev gzip zstd  # compressed captures (core/decompress.h) and their tests
  tcpdump tshark wireshark-common tcpreplay tcpflow iproute2 procps time python3
  python3-matplotlib  # tools/veipipe-plot
  clang libclang-rt-14-dev  # the libFuzzer targets (fuzz/) and their runtime
  dpkg-dev file  # cpack -G DEB: dpkg-shlibdeps computes the dependencies of the ELF files `file` finds
  mandoc man-db groff-base bsdextrautils  # the man pages' lint and rendering (tests/man_test.sh)
  pybind11-dev python3-dev python3-venv python3-pip python3-setuptools python3-wheel python3-scapy  # python/ and its test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo_cmd[@]}" debconf-set-selections
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
