#!/bin/sh
# Configure + build the host variants into firmware/host/build/<variant>
# ($HIL_HOST_BUILD_DIR/<variant> when that is set).
# usage: build.sh [plain|asan|fuzz|all] (default: plain). Idempotent and
# incremental: re-running only rebuilds what changed.
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
all)
    "$0" plain
    "$0" asan
    "$0" fuzz
    ;;
*)
    echo "usage: $0 [plain|asan|fuzz|all]" >&2
    exit 2
    ;;
esac
