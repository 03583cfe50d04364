#!/usr/bin/env bash
# The Debian packages (`cpack -G DEB`, cmake/packaging.cmake): veipipe_VERSION_ARCH.deb and
# veipipe-dev_VERSION_ARCH.deb are built; `dpkg -c` lists the tools and the shared library in the
# first, headers, static library, cmake and pkg-config files in the second (and every man page the
# build made in one of them); the dependencies are those dpkg-shlibdeps found and, for -dev, the
# runtime package of the same version; both install with `dpkg -i`; the installed veipipe gives
# the build's output byte for byte; a C client of vei.h builds against the installed vei.pc and
# runs; `dpkg -r` removes both and every file they brought (`dpkg -P` then drops their records).
#
# Needs root (dpkg -i): skipped otherwise (exit 77), and skipped when a veipipe package is
# installed already or any file of the packages exists on this machine, so that nothing present
# is overwritten or removed.
#
# Usage: tests/deb_test.sh BUILD-DIR CORPUS-DIR
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
usage="usage: $0 BUILD-DIR CORPUS-DIR"
build=$(realpath "${1:?$usage}") corpus=$(realpath "${2:?$usage}") || exit 2
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"
skip() { echo "deb_test: SKIPPED: $1" >&2; exit 77; }
((EUID == 0)) || skip "dpkg -i needs root"
require deb_test cpack dpkg dpkg-deb gcc pkg-config cmp timeout
for package in veipipe veipipe-dev; do
  # Any state dpkg knows (installed, half-installed, config-files) is someone else's to settle.
  dpkg -s "$package" >/dev/null 2>&1 && skip "dpkg knows a package $package on this machine: not touching it"
done
export VEI_SPEED=topspeed

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deb_test.XXXXXX") || exit 1
installed=()
cleanup() {
  ((${#installed[@]})) && dpkg -P "${installed[@]}" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! (cd "$build" && timeout 300 cpack -G DEB -B "$tmp/deb") >"$tmp/log" 2>&1; then
  fail "cpack -G DEB" "$(tail -20 "$tmp/log")"
  summary deb_test
  exit
fi
arch=$(dpkg --print-architecture)
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")/\1/p' "$build/CPackConfig.cmake")
runtime=$tmp/deb/veipipe_${version}_$arch.deb dev=$tmp/deb/veipipe-dev_${version}_$arch.deb
[[ -f $runtime && -f $dev ]] && pass || { fail "cpack made veipipe_${version}_$arch.deb and veipipe-dev_${version}_$arch.deb" "$(ls "$tmp/deb")"; summary deb_test; exit; }

# Paths in the packages, one a line, without the leading "." (symbolic links too, not directories).
contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }'; }
contents "$runtime" >"$tmp/runtime.list"
contents "$dev" >"$tmp/dev.list"
lists() { # lists LIST REGEX...: each regex matches a path of the list
  local list=$1 regex
  shift
  for regex in "$@"; do grep -qE "$regex" "$tmp/$list.list" && pass || fail "$list package lists $regex" "$(cat "$tmp/$list.list")"; done
}
lists runtime '^/usr/bin/veipipe$' '^/usr/bin/veigen$' '^/usr/bin/nech0$' '^/usr/bin/vei_pinger$' '^/usr/bin/vei_inject$' \
  '^/usr/lib/(.*/)?libveipipe\.so\.0$' '^/usr/lib/(.*/)?libveipipe\.so\.0\.1\.0$'
lists dev '^/usr/include/veipipe/vei\.h$' '^/usr/include/veipipe/engine\.h$' '^/usr/include/veipipe/pipeline/description\.h$' \
  '^/usr/lib/(.*/)?libveipipe\.a$' '^/usr/lib/(.*/)?libveipipe\.so$' '^/usr/lib/(.*/)?cmake/veipipe/veipipeConfig\.cmake$' \
  '^/usr/lib/(.*/)?cmake/veipipe/veipipeTargets\.cmake$' '^/usr/lib/(.*/)?pkgconfig/veipipe\.pc$' '^/usr/lib/(.*/)?pkgconfig/vei\.pc$'
# Man pages are another part of issue 14: each one the build made is in a package.
for page in "$build"/man/*.[1-9]; do
  [[ -e $page ]] || continue
  name=$(basename "$page")
  grep -qE "^/usr/share/man/man${name##*.}/${name//./\\.}(\.gz)?$" "$tmp/runtime.list" "$tmp/dev.list" && pass ||
    fail "a package has the man page $name"
done

depends=$(dpkg-deb -f "$runtime" Depends)
[[ $depends == *libc6* && $depends == *libpcap0.8* && $depends == *libtbb* && $depends == *libstdc++6* ]] && pass ||
  fail "veipipe depends on libc6, libpcap0.8, libtbb, libstdc++6 (dpkg-shlibdeps)" "Depends: $depends"
depends=$(dpkg-deb -f "$dev" Depends)
[[ $depends == *"veipipe (= $version)"* && $depends == *libpcap-dev* && $depends == *libtbb-dev* ]] && pass ||
  fail "veipipe-dev depends on veipipe (= $version) and the -dev packages" "Depends: $depends"

# Nothing on this machine may be overwritten (dpkg -i replaces a file no package owns) or removed.
present=$(cat "$tmp/runtime.list" "$tmp/dev.list" | while read -r path; do [[ -e $path || -L $path ]] && echo "$path"; done)
[[ -z $present ]] || skip "files of the packages exist on this machine: $(echo "$present" | head -3 | tr '\n' ' ')"

if dpkg -i "$runtime" "$dev" >"$tmp/log" 2>&1; then
  installed=(veipipe-dev veipipe)
  pass
else
  installed=(veipipe-dev veipipe) # whatever dpkg got half done is undone on exit
  fail "dpkg -i both packages" "$(tail -20 "$tmp/log")"
  summary deb_test
  exit
fi

description="pcap($corpus/joincap-ok.pcap) -> m: merge -> file(@OUT@)
pcap($corpus/tcpreplay-test.pcap, at=+1s) -> snaplen(96) -> m"
if timeout 60 "$build/veipipe" run -q -e "${description//@OUT@/$tmp/expected.pcap}" 2>"$tmp/err" &&
  timeout 60 /usr/bin/veipipe run -q -e "${description//@OUT@/$tmp/installed.pcap}" 2>>"$tmp/err" &&
  cmp -s "$tmp/expected.pcap" "$tmp/installed.pcap"; then pass
else fail "/usr/bin/veipipe gives the build's output" "$(cat "$tmp/err")"; fi

# --version names the libraries it runs on; man finds the installed page (man-db from setup.sh).
version_line=$(/usr/bin/veipipe --version 2>&1 | head -1)
[[ $version_line == "veipipe $version" ]] && /usr/bin/veipipe --version | grep -q "^libpcap version" && pass ||
  fail "/usr/bin/veipipe --version" "$(/usr/bin/veipipe --version 2>&1)"
if command -v man >/dev/null; then
  [[ $(man -w veipipe 2>&1) == /usr/share/man/man1/veipipe.1* ]] && man veipipe 2>/dev/null | grep -q "veipipe" && pass ||
    fail "man veipipe finds and shows the installed page" "$(man -w veipipe 2>&1)"
fi

# The installed vei.pc, and libveipipe.so.0 found by the dynamic linker (the package's postinst
# runs ldconfig).
# shellcheck disable=SC2046 # the flags pkg-config prints are separate words
if gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/vei_client" "$tests_dir/install/vei_client.c" $(pkg-config --cflags --libs vei) 2>"$tmp/err" &&
  timeout 60 "$tmp/vei_client" "$corpus/joincap-ok.pcap" "$tmp/vei.pcap" 2 >"$tmp/out" 2>>"$tmp/err" && [[ $(cat "$tmp/out") == 2 ]]; then pass
else fail "a C client of the installed vei.pc builds and runs" "$(cat "$tmp/err")"; fi

# dpkg -r keeps a package's record while its postrm (ldconfig) could still be asked to purge: -P
# after it leaves dpkg as it was.
if dpkg -r veipipe-dev veipipe >"$tmp/log" 2>&1 && dpkg -P veipipe-dev veipipe >>"$tmp/log" 2>&1; then
  installed=()
  pass
else fail "dpkg -r, then -P, both packages" "$(tail -20 "$tmp/log")"; fi
left=$(cat "$tmp/runtime.list" "$tmp/dev.list" | while read -r path; do [[ -e $path || -L $path ]] && echo "$path"; done)
for dir in /usr/include/veipipe /usr/lib/cmake/veipipe /usr/lib/*/cmake/veipipe; do [[ -d $dir ]] && left+=" $dir"; done
[[ -z $left ]] && pass || fail "dpkg -r leaves nothing of the packages" "$left"
summary deb_test
