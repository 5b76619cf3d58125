#!/bin/sh
# Cross-build the core's socket-free modules (mqtt_codec, http_parse, settings,
# util, nvs_image, ...) and their unit tests (CMakeLists.txt: RV32_TESTS) for bare-metal
# RV32IMAC (the ESP32-C3's ISA, ILP32: uint32_t is `unsigned long` as in
# ESP-IDF 5) against mbedTLS 3.6 built the same way, and run each test under
# qemu-system-riscv32 (semihosting: the test's exit status is qemu's; a failed
# CHECK, assert() or CPU fault fails the run, a hang times out). Also compiles
# every other module of the core for rv32 (objects + .su/.ci files for
# bench/footprint.py and bench/stack.py).
#
# usage: firmware/host/rv32/check.sh
# env:   HIL_HOST_BUILD_DIR       build root (default firmware/host/build); this
#                                 script uses <root>/rv32 (mbedTLS is built there
#                                 once and reused)
#        HIL_RV32_MBEDTLS_CONFIG  mbedTLS base config: a file, or "default" for
#                                 mbedTLS's own (default: firmware/host/mbedtls3/
#                                 esp_idf_config.h, ESP-IDF's configuration)
#        HIL_RV32_OPT             optimisation flags (default -Os)
#        HIL_RV32_TIMEOUT         seconds per test under qemu (default 120)
#        HIL_MBEDTLS3_SRC etc.    see firmware/host/mbedtls3/fetch.sh
# Needs (Debian 12): gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
# qemu-system-misc cmake (ninja-build used when present).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
host=$(cd "$here/.." && pwd)
build_root=${HIL_HOST_BUILD_DIR:-$host/build}
case "$build_root" in /*) ;; *) build_root=$(pwd)/$build_root ;; esac
build=$build_root/rv32
timeout_s=${HIL_RV32_TIMEOUT:-120}
opt=${HIL_RV32_OPT:--Os}

missing() {
    echo "rv32/check.sh: $1 not found: install $2 (apt-get install -y --no-install-recommends $2)" >&2
    exit 2
}
command -v riscv64-unknown-elf-gcc >/dev/null || missing riscv64-unknown-elf-gcc gcc-riscv64-unknown-elf
riscv64-unknown-elf-gcc --specs=picolibc.specs -march=rv32imac -mabi=ilp32 -E -x c /dev/null \
    >/dev/null 2>&1 || missing "picolibc (picolibc.specs)" picolibc-riscv64-unknown-elf
command -v qemu-system-riscv32 >/dev/null || missing qemu-system-riscv32 qemu-system-misc
command -v cmake >/dev/null || missing cmake cmake
command -v timeout >/dev/null || missing timeout coreutils

mbedtls_src=$("$host/mbedtls3/fetch.sh") || {
    echo "rv32/check.sh: no mbedTLS 3.6 source (firmware/host/mbedtls3/fetch.sh failed)" >&2
    exit 2
}
base_config=${HIL_RV32_MBEDTLS_CONFIG:-$host/mbedtls3/esp_idf_config.h}
if [ "$base_config" = default ]; then
    base_config=""
elif [ ! -f "$base_config" ]; then
    echo "rv32/check.sh: mbedTLS config $base_config not found (HIL_RV32_MBEDTLS_CONFIG=default: mbedTLS's own)" >&2
    exit 2
fi

gen=""
command -v ninja >/dev/null && gen="-G Ninja"
# a build directory made with the other generator cannot be reused
if [ -f "$build/CMakeCache.txt" ]; then
    if grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$build/CMakeCache.txt"; then
        [ -n "$gen" ] || rm -rf "$build"
    else
        [ -z "$gen" ] || rm -rf "$build"
    fi
fi
mkdir -p "$build"
echo "rv32: mbedTLS $(basename "$mbedtls_src"), config ${base_config:-mbedTLS default} + rv32_overlay.h, $opt; build in $build"
# shellcheck disable=SC2086 # $gen is empty or two words
cmake $gen -S "$here" -B "$build" -Wno-dev \
    -DCMAKE_TOOLCHAIN_FILE="$here/toolchain-rv32imac.cmake" \
    -DRV32_EXTRA_C_FLAGS="-fstack-usage -fcallgraph-info=su" \
    -DMBEDTLS_SRC="$mbedtls_src" -DMBEDTLS_BASE_CONFIG="$base_config" -DRV32_OPT="$opt" \
    >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)" >"$build/build.log" 2>&1 || {
    grep -E -B2 -A12 'error|Error' "$build/build.log" | head -n 80 >&2
    echo "rv32/check.sh: build failed (full log: $build/build.log)" >&2
    exit 1
}

failed=0
for t in $(cat "$build/rv32_tests.txt"); do
    elf=$build/$t.elf
    log=$build/$t.log
    start=$(date +%s.%N)
    rc=0
    timeout "$timeout_s" qemu-system-riscv32 -M virt -bios none -kernel "$elf" -nographic \
        -monitor none -serial none -semihosting-config enable=on,target=native \
        >"$log" 2>&1 || rc=$?
    secs=$(echo "$start $(date +%s.%N)" | awk '{printf "%.2f", $2 - $1}')
    if [ "$rc" -eq 0 ]; then
        echo "PASS $t (qemu-system-riscv32, ${secs} s)"
    else
        if [ "$rc" -eq 124 ]; then why="timed out after $timeout_s s"; else why="exit status $rc"; fi
        echo "FAIL $t ($why, ${secs} s); its output:"
        sed 's/^/    /' "$log" | tail -n 40
        failed=$((failed + 1))
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "rv32: $failed test(s) failed"
    exit 1
fi
echo "rv32: all tests passed"
