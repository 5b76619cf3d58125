#!/bin/sh
# Bring mbedTLS 3.6's source (Debian's source package, from the next Debian
# release's suite) into a cache directory, without touching the system's apt
# sources or state: a private sources file, lists and cache directory are used,
# and the archive's keyring verifies the index the tarball's checksum comes from.
#
# usage: fetch.sh            prints the directory of the unpacked source tree
# env:   HIL_CACHE_DIR       cache root (default ${XDG_CACHE_HOME:-~/.cache}/hil-rig)
#        HIL_MBEDTLS3_SUITE  Debian suite to take it from (default trixie)
#        HIL_MBEDTLS3_SRC    an unpacked mbedTLS 3.6 tree to use instead (no download)
# Needs apt-get (any user; no root). Idempotent: a tree already unpacked is reused.
set -eu

if [ -n "${HIL_MBEDTLS3_SRC:-}" ]; then
    [ -f "$HIL_MBEDTLS3_SRC/include/mbedtls/build_info.h" ] || {
        echo "fetch.sh: HIL_MBEDTLS3_SRC=$HIL_MBEDTLS3_SRC is not an mbedTLS 3 source tree" >&2
        exit 1
    }
    echo "$HIL_MBEDTLS3_SRC"
    exit 0
fi

suite=${HIL_MBEDTLS3_SUITE:-trixie}
. "$(dirname "$0")/../../../rig/local/cache_dir.sh"  # hil_cache_dir: the rig's cache
cache=$(hil_cache_dir)
root="$cache/mbedtls3-$suite"
mkdir -p "$root"

# an already unpacked tree (any 3.6.x) is reused
for d in "$root"/src/mbedtls-3.6.*; do
    if [ -f "$d/include/mbedtls/build_info.h" ]; then
        echo "$d"
        exit 0
    fi
done

. "$(dirname "$0")/../debian_source.sh"  # debian_source_download
debian_source_download "$root" "$suite" mbedtls HIL_MBEDTLS3_SRC
tarball=$(ls "$root"/src/mbedtls_3.6.*.orig.tar.* 2>/dev/null | head -n 1)
[ -n "$tarball" ] || {
    echo "fetch.sh: the $suite suite has no mbedtls 3.6 source package (found: $(ls "$root/src"))" >&2
    exit 1
}
tmp=$(mktemp -d "$root/src/unpack.XXXXXX")
tar -xf "$tarball" -C "$tmp"
top=$(ls "$tmp")
ver=$(basename "$tarball" | sed 's/^mbedtls_\(3\.6\.[0-9]*\)\.orig.*/\1/')
rm -rf "$root/src/mbedtls-$ver"
mv "$tmp/$top" "$root/src/mbedtls-$ver"
rmdir "$tmp"
echo "$root/src/mbedtls-$ver"
