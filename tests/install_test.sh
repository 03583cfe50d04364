#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then out-of-tree clients built against it alone
# (tests/install/): the C client of vei.h and the C++ client of Engine, once through
# find_package(veipipe) (with the shared and with the static library) and once through pkg-config
# (vei.pc, veipipe.pc). Checked:
#   - the installed files: tools, libveipipe.so.0.1.0 with SONAME libveipipe.so.0 and its links,
#     libveipipe.a, headers, cmake and pkg-config files; no path into the source tree, the build
#     tree or the prefix itself in the cmake and .pc files (the package is relocatable); nothing
#     installed outside the components runtime and dev, which the Debian packages hold;
#   - the clients' builds name no path into the source or build tree;
#   - the C++ clients' output is byte for byte the in-tree `veipipe run` of the same description;
#     with a stage injected, capinfos and tshark count its packets on top of the background's;
#   - the C client's output holds the background plus one ICMP echo request per ping accepted
#     (capinfos, tshark).
#
# Usage: tests/install_test.sh BUILD-DIR path/to/veipipe CORPUS-DIR
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
usage="usage: $0 BUILD-DIR path/to/veipipe CORPUS-DIR"
build=$(realpath "${1:?$usage}") veipipe=$(realpath "${2:?$usage}") corpus=$(realpath "${3:?$usage}") || exit 2
source_dir=$(realpath "$tests_dir/..")
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
require install_test cmake ninja gcc g++ pkg-config readelf capinfos tshark cmp timeout "$veipipe"
export VEI_SPEED=topspeed

tmp=$(mktemp -d "${TMPDIR:-/tmp}/install_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
# step WHAT COMMAND...: passes when COMMAND succeeds; its output is shown when it fails.
step() {
  local what=$1
  shift
  if timeout 120 "$@" >"$tmp/log" 2>&1; then pass; else fail "$what" "$(tail -20 "$tmp/log")"; return 1; fi
}

step "cmake --install into $prefix" cmake --install "$build" --prefix "$prefix" || { summary install_test; exit; }
libdir=$(find "$prefix" -name libveipipe.a -printf '%h\n' | head -1)
for file in bin/veipipe bin/veigen bin/nech0 bin/vei_pinger bin/vei_inject include/veipipe/vei.h include/veipipe/engine.h; do
  [[ -x $prefix/$file || ($file == *.h && -f $prefix/$file) ]] && pass || fail "$file not installed"
done
for file in libveipipe.so.0.1.0 libveipipe.so.0 libveipipe.so libveipipe.a pkgconfig/veipipe.pc pkgconfig/vei.pc \
  cmake/veipipe/veipipeConfig.cmake cmake/veipipe/veipipeConfigVersion.cmake cmake/veipipe/veipipeTargets.cmake; do
  [[ -e $libdir/$file ]] && pass || fail "lib/.../$file not installed (libdir: ${libdir:-none})"
done
soname=$(readelf -d "$libdir/libveipipe.so.0.1.0" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libveipipe.so.0 && $(readlink "$libdir/libveipipe.so") == libveipipe.so.0 ]] && pass ||
  fail "SONAME libveipipe.so.0, libveipipe.so -> libveipipe.so.0" "SONAME: $soname, link: $(readlink "$libdir/libveipipe.so")"
# A file installed without a COMPONENT would be in neither Debian package (cmake/install.cmake).
unpackaged=$(cmake --install "$build" --prefix "$tmp/unspecified" --component Unspecified 2>&1 | grep -E 'Installing|Up-to-date')
[[ -z $unpackaged ]] && pass || fail "files installed outside the components runtime and dev" "$unpackaged"
leaks=$(grep -rlF -e "$source_dir" -e "$build" -e "$prefix" "$libdir/cmake" "$libdir/pkgconfig")
[[ -z $leaks ]] && pass || fail "installed cmake and pkg-config files name the source, build or install tree" "$leaks"

# The clients build from a copy of their sources: nothing in their builds may lead into this tree.
cp -r "$tests_dir/install" "$tmp/src"
step "find_package build of the clients" cmake -S "$tmp/src" -B "$tmp/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON && step "ninja (find_package clients)" ninja -C "$tmp/cmake"
export PKG_CONFIG_PATH=$libdir/pkgconfig
mkdir -p "$tmp/pc"
# shellcheck disable=SC2046 # the flags pkg-config prints are separate words
step "gcc -std=c11 -Wpedantic -Werror with pkg-config vei" gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc/vei_client" "$tmp/src/vei_client.c" \
  $(pkg-config --cflags --libs vei) -Wl,-rpath,"$(pkg-config --variable=libdir vei)"
# A static link from C (tests/install/CMakeLists.txt links one through CMake) needs the C++ runtime.
# Not tried here: Debian's libpcap.pc asks a static link for libraries of systemd and D-Bus that
# only their own -dev packages provide.
[[ " $(pkg-config --static --libs vei) " == *" -lstdc++ "*" -lpcap "* ]] && pass ||
  fail "pkg-config --static --libs vei names -lstdc++ then libpcap" "$(pkg-config --static --libs vei)"
# shellcheck disable=SC2046
step "g++ -std=c++20 with pkg-config veipipe" g++ -std=c++20 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc/engine_client" "$tmp/src/engine_client.cpp" \
  $(pkg-config --cflags --libs veipipe) -Wl,-rpath,"$(pkg-config --variable=libdir veipipe)"
[[ -x $tmp/cmake/vei_client_static ]] && ! readelf -d "$tmp/cmake/vei_client_static" | grep -q 'NEEDED.*libveipipe' && pass ||
  fail "the static C client was built and needs no libveipipe.so"
leaks=$(grep -lF -e "$source_dir" -e "$build" "$tmp/cmake/compile_commands.json" "$tmp/cmake/build.ninja")
[[ -z $leaks ]] && pass || fail "the find_package build names the source or build tree" "$leaks"

packets() { capinfos -c -M "$1" 2>/dev/null | awk '/^Number of packets/ { print $NF }'; }
echo_requests() { tshark -n -r "$1" -Y 'icmp.type == 8' 2>/dev/null | wc -l; }

background=$corpus/joincap-ok.pcap
bg_packets=$(packets "$background") bg_requests=$(echo_requests "$background")
description="pcap($background) -> m: merge -> file(@OUT@)
pcap($corpus/tcpreplay-test.pcap, at=+1s) -> snaplen(96) -> m"
timeout 60 "$veipipe" run -q -e "${description//@OUT@/$tmp/expected.pcap}" 2>"$tmp/err" || fail "in-tree veipipe run" "$(cat "$tmp/err")"
for client in cmake/engine_client cmake/engine_client_static pc/engine_client; do
  out=$tmp/${client//\//_}.pcap
  step "$client runs the description" "$tmp/$client" "${description//@OUT@/$out}" &&
    { cmp -s "$tmp/expected.pcap" "$out" && pass || fail "$client: output differs from the in-tree veipipe's"; }
  out=$tmp/${client//\//_}.icmp.pcap
  if timeout 60 "$tmp/$client" "pcap($background) -> file($out)" "icmp(dst=10.0.0.9, count=3)" >"$tmp/stdout" 2>"$tmp/err"; then
    read -r written events <"$tmp/stdout"
    got="stdout: $written $events, capinfos: $(packets "$out"), echo requests: $(echo_requests "$out")"
    [[ $got == "stdout: $((bg_packets + 3)) 3, capinfos: $((bg_packets + 3)), echo requests: $((bg_requests + 3))" ]] && pass ||
      fail "$client: the background plus 3 injected echo requests" "$got (background: $bg_packets packets, $bg_requests requests)"
  else fail "$client with an injected stage" "$(cat "$tmp/err")"; fi
done
for client in cmake/vei_client cmake/vei_client_static pc/vei_client; do
  out=$tmp/${client//\//_}.pcap
  if timeout 60 "$tmp/$client" "$background" "$out" 4 >"$tmp/stdout" 2>"$tmp/err"; then
    got="accepted: $(cat "$tmp/stdout"), capinfos: $(packets "$out"), echo requests: $(echo_requests "$out")"
    [[ $got == "accepted: 4, capinfos: $((bg_packets + 4)), echo requests: $((bg_requests + 4))" ]] && pass ||
      fail "$client: the background plus 4 pings" "$got (background: $bg_packets packets, $bg_requests requests)"
  else fail "$client runs" "$(cat "$tmp/err")"; fi
done
summary install_test
