#!/bin/sh
# Build the host variants, check the core's layering (layers.sh on the plain
# and esp-asan objects), run the unit tests on the plain, asan and esp-asan
# builds, the socket-free modules' tests on rv32 under QEMU (rv32/check.sh), and
# each fuzzer for FUZZ_SECONDS (default 20) on its committed seed corpus.
# Exits non-zero on any failure. Builds go where build.sh puts them:
# $HIL_HOST_BUILD_DIR/<variant> when that is set, else firmware/host/build/<variant>.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
secs=${FUZZ_SECONDS:-20}
builds=${HIL_HOST_BUILD_DIR:-$here/build}
case "$builds" in /*) ;; *) builds="$PWD/$builds" ;; esac # the fuzzers run in a scratch dir

"$here/build.sh" all
# the core's layers (components/agent/layers.txt): no file calls a layer above
# it; both builds, since their #if branches (mbedTLS 2.28 / 3.6) differ
echo "== layers"
"$here/layers.sh" "$builds/plain/agent/libagent.a" "$builds/esp-asan/agent/libagent.a"
for v in plain asan esp-asan; do
    echo "== ctest ($v: $builds/$v)"
    (cd "$builds/$v" && ctest --output-on-failure)
done
# the socket-free modules and their tests on rv32imac (the ESP32-C3's ISA) under QEMU
echo "== rv32 (qemu)"
"$here/rv32/check.sh"

for f in fuzz_mqtt_decode fuzz_console_line fuzz_http_request fuzz_nvs_image fuzz_rpc; do
    echo "== $f (${secs}s)"
    case "$f" in
    fuzz_nvs_image) max_len=16384 ;; # NVS images are whole 4096-byte pages
    *) max_len=4096 ;;
    esac
    work=$(mktemp -d)
    # new inputs go to a scratch corpus; the committed seeds stay untouched
    (cd "$work" && "$builds/fuzz/$f" -max_total_time="$secs" -max_len="$max_len" \
        -print_final_stats=1 "$work" "$here/fuzz/corpus/$f") || {
        echo "check: $f failed (artifacts in $work)" >&2
        exit 1
    }
    rm -rf "$work"
done
echo "check: all host checks passed"
