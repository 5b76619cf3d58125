# debian_source.sh - sourced by mbedtls3/fetch.sh and cjson/fetch.sh: bring a Debian source
# package's files into a cache directory without touching the system's apt sources or state.
# A private sources file, lists and cache directory are used, and the archive's keyring (the
# one the system's own sources name) verifies the index the files' checksums come from.
#
#   debian_source_download ROOT SUITE PACKAGE OVERRIDE
#       downloads PACKAGE's source files (orig and debian tarballs, .dsc) from SUITE into
#       ROOT/src, with apt state in ROOT (removed afterwards); OVERRIDE names the environment
#       variable that points at an unpacked tree instead, for the error messages.
# Needs apt-get (any user; no root).

# the system's own Debian archive URI and keyring, read from its sources (sets uri, keyring)
debian_archive() {
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
    [ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -n "$uri" ]
}

debian_source_download() {
    ds_root=$1 ds_suite=$2 ds_package=$3 ds_override=$4
    command -v apt-get >/dev/null || {
        echo "fetch.sh: apt-get not found; set $ds_override to an unpacked $ds_package source tree" >&2
        return 1
    }
    debian_archive || {
        echo "fetch.sh: no Debian archive found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list;" >&2
        echo "fetch.sh: set $ds_override to an unpacked $ds_package source tree" >&2
        return 1
    }
    mkdir -p "$ds_root/lists/partial" "$ds_root/cache/archives/partial" "$ds_root/src"
    printf 'deb-src [signed-by=%s] %s %s main\n' "$keyring" "$uri" "$ds_suite" >"$ds_root/sources.list"
    echo "fetch.sh: $ds_package source from $uri $ds_suite (private apt state in $ds_root)" >&2
    if ds_apt update >&2 && (cd "$ds_root/src" && ds_apt source --download-only "$ds_package" >&2)
    then ds_rc=0
    else ds_rc=$?
    fi
    rm -rf "$ds_root/lists" "$ds_root/cache"
    return $ds_rc
}

ds_apt() {
    apt-get -q -o Dir::Etc::SourceList="$ds_root/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$ds_root/lists" -o Dir::Cache="$ds_root/cache" \
        -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" \
        "$@"
}
