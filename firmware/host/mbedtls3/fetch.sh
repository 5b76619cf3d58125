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

command -v apt-get >/dev/null || {
    echo "fetch.sh: apt-get not found; set HIL_MBEDTLS3_SRC to an unpacked mbedTLS 3.6 source tree" >&2
    exit 1
}

# the system's own Debian archive URI and keyring, read from its sources
uri="" keyring=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    u=$(awk '/^URIs:/ {print $2; exit}' "$f")
    case "$u" in */debian) ;; *) continue ;; esac
    uri=$u
    keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$f")
    break
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || {
    echo "fetch.sh: no Debian archive found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list;" >&2
    echo "fetch.sh: set HIL_MBEDTLS3_SRC to an unpacked mbedTLS 3.6 source tree" >&2
    exit 1
}
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg

mkdir -p "$root/lists/partial" "$root/cache/archives/partial" "$root/src"
printf 'deb-src [signed-by=%s] %s %s main\n' "$keyring" "$uri" "$suite" > "$root/sources.list"
apt_private() {
    apt-get -q -o Dir::Etc::SourceList="$root/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$root/lists" -o Dir::Cache="$root/cache" \
        -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" \
        "$@"
}
echo "fetch.sh: mbedtls source from $uri $suite (private apt state in $root)" >&2
apt_private update >&2
(cd "$root/src" && apt_private source --download-only mbedtls >&2)
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
rm -rf "$root/lists" "$root/cache"
echo "$root/src/mbedtls-$ver"
