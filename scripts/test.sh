#!/usr/bin/env bash
# Builds veipipe and runs the whole test suite (unit, corpus, command-line, wire, large-file tests),
# then the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer (the 4 GiB test
# aside: it exercises nothing the others do not, and takes minutes under ASan), and once more under
# ThreadSanitizer.
# Last, a half-minute fuzz smoke run of the libFuzzer targets (fuzz/), built with clang in build-fuzz/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Each stage's start in the log, so that CI's 40 minutes can be accounted for stage by stage.
stage() { echo "=== test.sh: $1 at $(date -u +%H:%M:%S) (${SECONDS} s in)"; }
stage "plain build"
bash "$here/scripts/build.sh"
stage "plain tests"
build=${VEIPIPE_BUILD_DIR:-$here/build}
ctest --test-dir "$build" --output-on-failure -j2 "$@"
asan=${VEIPIPE_ASAN_BUILD_DIR:-$here/build-asan}
stage "ASan build"
VEIPIPE_BUILD_DIR=$asan bash "$here/scripts/build.sh" -DVEIPIPE_SANITIZE=address,undefined -DVEIPIPE_BUILD_BENCHMARKS=OFF
# The conversation tests' thousands of conversations are the plain run's; 300 suffice here. The
# linktype_* tests compare the transforms' output on every corpus file with tcpdump's, editcap's
# and tcprewrite's (290 s under ASan, CI has 40 minutes in all): ASan reads the same files through
# the same parsers in the corpus unit test and the golden tests, and the fuzzers go further.
# The golden cases run without their tshark listings (GOLDEN_LISTINGS=0, tests/golden.sh): the plain
# stage has compared the same outputs; here what counts is what the sanitizers say (100 s to 70 s).
# The control burst test starts 150 clients rather than 500: each is an ASan binary, 0.2 s to start,
# and the test runs alone (75 s for 500); 150 still overflow the server's 64 connections into the
# backlog, which is the server's path under test. The plain stage runs all 500.
stage "ASan tests"
GOLDEN_LISTINGS=0 VEIPIPE_CONVERSATIONS_MAX=300 VEIPIPE_BURST_CLIENTS=150 ctest --test-dir "$asan" --output-on-failure -j2 -E 'large_file_test|linktype_' "$@"
tsan=${VEIPIPE_TSAN_BUILD_DIR:-$here/build-tsan}
# TSan needs a libtbb built with it (Debian's own source, scripts/tsan-tbb.sh), or it reports TBB's
# task hand-offs as races. No suppressions: every report fails the stage. TSan's one-second sleep
# at exit is cut to 100 ms, which the tests that time an exit allow for. The limits test stays out:
# it bounds RSS, which TSan's shadow memory multiplies; the plain and ASan runs check it. So does the
# control burst test: 500 TSan-instrumented client processes at once would need tens of GiB; the
# server's side of a burst is run under TSan by the control socket's unit tests. The checks of
# formats, transforms and the command line (golden_*, linktype_*, cli, transform, paths, examples,
# compress, pcapng_out, veigen_check, labels, and the generated documents) stay out too: they run
# the same engine on the same threads as every other test, whose thread work the tests kept here
# exercise harder (injection from many threads, control sockets, live capture, the wire, signals,
# the soak test, the conversations), and they would take a third of CI's 40 minutes under TSan.
# The plain and ASan stages run them. Of the conversation generators, two stay (a TCP one and a UDP
# one): the others run on the same source threads with the same hand-offs (150 s under TSan).
tsan_out='large_file_test|limits_test|control_burst_test|golden_|linktype_|cli_test|transform_test|paths_test'
tsan_out+='|conversation_(http|sip|smtp|ssh|tls|traceroute|synscan)_test'
tsan_out+='|examples_test|compress_test|pcapng_out_test|veigen_check|labels_test|man_test|completion_test'
tsan_out+='|registry_test|plot_test'
stage "TSan build"
tbb_config=$(bash "$here/scripts/tsan-tbb.sh" "$tsan-tbb")
cmake -S "$here" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVEIPIPE_SANITIZE=thread \
  -DVEIPIPE_BUILD_BENCHMARKS=OFF -DTBB_DIR="$tbb_config" >/dev/null
ninja -C "$tsan"
stage "TSan tests"
TSAN_OPTIONS="halt_on_error=1 atexit_sleep_ms=100" VEIPIPE_CONVERSATIONS_MAX=500 \
  ctest --test-dir "$tsan" --output-on-failure -j2 -E "$tsan_out" "$@"

# The fuzz smoke test (tests/fuzz_smoke.sh, about half a minute): the libFuzzer targets need clang, so they
# build in a directory of their own (build-fuzz/). It runs when the whole suite does (no ctest
# arguments), or with VEIPIPE_FUZZ_SMOKE=1; VEIPIPE_FUZZ_SMOKE=0 skips it.
if [[ ${VEIPIPE_FUZZ_SMOKE:-$(($# == 0))} == 1 ]]; then
  stage "fuzz build and smoke"
  fuzz=${VEIPIPE_FUZZ_BUILD_DIR:-$here/build-fuzz}
  CC=clang CXX=clang++ cmake -S "$here" -B "$fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVEIPIPE_FUZZ=ON -DVEIPIPE_BUILD_BENCHMARKS=OFF >/dev/null
  ninja -C "$fuzz" fuzzers
  ctest --test-dir "$fuzz" --output-on-failure -R '^fuzz_smoke$'
fi
stage "done"
