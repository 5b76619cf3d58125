#!/bin/sh
# Configure + build the host variants into firmware/host/build/<variant>
# ($HIL_HOST_BUILD_DIR/<variant> when that is set).
# usage: build.sh [plain|asan|fuzz|esp|esp-asan|all] (default: plain). Idempotent
# and incremental: re-running only rebuilds what changed.
#   plain, asan, fuzz: 64-bit, Debian's mbedTLS 2.28 (the `native` virtual board)
#   esp, esp-asan: what the chip runs (the `esp` virtual board): 32-bit (gcc -m32,
#        64-bit time_t), mbedTLS 3.6 built from source (mbedtls3/fetch.sh;
#        HIL_MBEDTLS3_SRC=<tree> to use another) with mbedtls3/esp_idf_config.h,
#        ESP-IDF's configuration for our sdkconfig.defaults. esp-asan adds ASan +
#        UBSan to everything, mbedTLS included (-m32 runtimes from gcc-multilib;
#        about 1.4x slower TLS; a memory error aborts the virtual board with a
#        report on stderr instead of corrupting it silently as on the chip).
#   all: plain, asan, fuzz and esp-asan (what check.sh tests); `hil run` builds
#        plain and esp, pytest asan and esp-asan, each when first needed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
gen=""
command -v ninja >/dev/null 2>&1 && gen="-G Ninja"

build() {
    variant=$1
    shift
    dir="${HIL_HOST_BUILD_DIR:-$here/build}/$variant"
    if [ ! -f "$dir/CMakeCache.txt" ]; then
        # shellcheck disable=SC2086
        cmake -S "$here" -B "$dir" $gen "$@"
    fi
    cmake --build "$dir" -j "$jobs"
}

variant=${1:-plain}
case "$variant" in
plain) build plain ;;
asan) build asan -DHIL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug ;;
fuzz) build fuzz -DHIL_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug ;;
esp | esp-asan)
    src=$("$here/mbedtls3/fetch.sh")
    sanitize=OFF
    [ "$variant" = esp-asan ] && sanitize=ON
    build "$variant" -DHIL_ESP=ON -DHIL_MBEDTLS3_SRC="$src" -DCMAKE_C_COMPILER=gcc \
        -DHIL_SANITIZE="$sanitize"
    ;;
all)
    "$0" plain
    "$0" asan
    "$0" fuzz
    "$0" esp-asan
    ;;
*)
    echo "usage: $0 [plain|asan|fuzz|esp|esp-asan|all]" >&2
    exit 2
    ;;
esac
