#!/usr/bin/env bash
# Builds Debian's own oneTBB (the source package of the libtbb-dev that veipipe links) with
# ThreadSanitizer and installs it under $1 (default build-tsan-tbb/). Debian's libtbb is not
# instrumented, so without this TSan cannot see the synchronisation inside TBB's scheduler and
# reports every task hand-off as a race. Prints the directory holding TBBConfig.cmake.
# apt reads the source index from a private list: the machine's apt configuration is not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(realpath -m "${1:-$here/build-tsan-tbb}")
config=$prefix/install/lib/cmake/TBB
if [[ -f $config/TBBConfig.cmake ]]; then
  echo "$config"
  exit 0
fi

version=$(dpkg-query -W -f='${Version}' libtbb-dev)
work=$prefix/work
rm -rf "$work"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
cat >"$work/apt/debian-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_options=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/apt"
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
  -o "APT::Sandbox::User=$(id -un)" -qq)
apt-get "${apt_options[@]}" update >&2
(cd "$work/src" && apt-get "${apt_options[@]}" source "onetbb=$version" >&2)
tree=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'onetbb-*')

# Only the task scheduler library: the flow graph is header-only, and veipipe uses neither
# tbbmalloc nor tbbbind.
cmake -S "$tree" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTBB_SANITIZE=thread -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBB_STRICT=OFF \
  -DTBBMALLOC_BUILD=OFF -DTBBMALLOC_PROXY_BUILD=OFF -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON \
  -DCMAKE_INSTALL_PREFIX="$prefix/install" >&2
ninja -C "$work/build" install >&2
rm -rf "$work"
echo "$config"
