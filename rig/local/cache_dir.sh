# shellcheck shell=sh
# The rig's cache directory for the shell scripts that source this file (hil.sh,
# firmware/host/mbedtls3/fetch.sh): POSIX sh, so it works before the venv exists. The same
# rule as rig/local/cache.py; tests/integration/test_cache_dir.py holds the two to each other.
#   dir="$(hil_cache_dir)/..."
hil_cache_dir() {
    printf '%s\n' "${HIL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hil-rig}"
}
