#!/bin/sh
# Bring cJSON's source (Debian's source package `cjson`, with Debian's patches
# applied) into the rig's cache directory, the same way as mbedtls3/fetch.sh:
# a private apt sources file, lists and cache directory (the system's apt
# sources and state are not touched), the archive's keyring verifying the
# index the tarballs' checksums come from. The host builds compile cJSON.c
# from this tree (both variants: native 64-bit and the esp variant, -m32);
# the ESP-IDF port uses ESP-IDF's own `json` component instead.
#
# usage: fetch.sh            prints the directory of the unpacked, patched source tree
# env:   HIL_CACHE_DIR       cache root (default ${XDG_CACHE_HOME:-~/.cache}/hil-rig)
#        HIL_CJSON_SUITE     Debian suite to take it from (default bookworm: cjson 1.7.15
#                            with Debian's security patches; trixie has 1.7.18)
#        HIL_CJSON_SRC       an unpacked cJSON tree (cJSON.c, cJSON.h) to use instead
# Needs apt-get and patch (any user; no root). Idempotent: a tree already
# unpacked is reused.
set -eu

if [ -n "${HIL_CJSON_SRC:-}" ]; then
    [ -f "$HIL_CJSON_SRC/cJSON.c" ] && [ -f "$HIL_CJSON_SRC/cJSON.h" ] || {
        echo "fetch.sh: HIL_CJSON_SRC=$HIL_CJSON_SRC is not a cJSON source tree (no cJSON.c/cJSON.h)" >&2
        exit 1
    }
    echo "$HIL_CJSON_SRC"
    exit 0
fi

suite=${HIL_CJSON_SUITE:-bookworm}
. "$(dirname "$0")/../../../rig/local/cache_dir.sh"  # hil_cache_dir: the rig's cache
cache=$(hil_cache_dir)
root="$cache/cjson-$suite"
mkdir -p "$root"

# an already unpacked and patched tree is reused
for d in "$root"/src/cjson-1.*; do
    if [ -f "$d/cJSON.c" ] && [ -f "$d/.hil-patched" ]; then
        echo "$d"
        exit 0
    fi
done

command -v patch >/dev/null || {
    echo "fetch.sh: patch not found; set HIL_CJSON_SRC to an unpacked cJSON source tree" >&2
    exit 1
}
. "$(dirname "$0")/../debian_source.sh"  # debian_source_download
rm -f "$root"/src/cjson_*
debian_source_download "$root" "$suite" cjson HIL_CJSON_SRC
tarball=$(ls "$root"/src/cjson_1.*.orig.tar.* 2>/dev/null | head -n 1)
debian=$(ls "$root"/src/cjson_1.*.debian.tar.* 2>/dev/null | head -n 1)
[ -n "$tarball" ] || {
    echo "fetch.sh: the $suite suite has no cjson 1.x source package (found: $(ls "$root/src"))" >&2
    exit 1
}
tmp=$(mktemp -d "$root/src/unpack.XXXXXX")
tar -xf "$tarball" -C "$tmp"
top=$(ls "$tmp")
# Debian's patches (security fixes), in the order of debian/patches/series
if [ -n "$debian" ]; then
    tar -xf "$debian" -C "$tmp/$top"
    series="$tmp/$top/debian/patches/series"
    if [ -f "$series" ]; then
        sed 's/#.*//' "$series" | while read -r p _; do
            [ -n "$p" ] || continue
            patch -d "$tmp/$top" -p1 -s -N <"$tmp/$top/debian/patches/$p" >&2 || {
                echo "fetch.sh: Debian patch $p does not apply" >&2
                exit 1
            }
        done
    fi
fi
debver=$(basename "${debian:-$tarball}" | sed 's/^cjson_\([^/]*\)\.\(debian\|orig\)\.tar\..*/\1/')
echo "$debver" >"$tmp/$top/.hil-patched"
ver=$(basename "$tarball" | sed 's/^cjson_\(1\.[0-9.]*\)\.orig.*/\1/')
rm -rf "$root/src/cjson-$ver"
mv "$tmp/$top" "$root/src/cjson-$ver"
rmdir "$tmp"
echo "$root/src/cjson-$ver"
