#!/usr/bin/env bash
# The rig's one entry point on a fresh Debian/Ubuntu machine. Safe to re-run.
#
#   ./hil.sh run      the main job: set up what is missing, then `hil run`
#   ./hil.sh test     set up, build the firmware's host port, then the whole test suite
#   ./hil.sh setup    only install what is missing (apt packages, .venv)
#   ./hil.sh ARGS...  any other `hil` command, e.g. ./hil.sh doctor, ./hil.sh broker up --mode psk
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  mosquitto mosquitto-clients openssl     # the broker and the reference MQTT peer
  gcc make cmake pkg-config libmbedtls-dev libssl-dev  # the firmware's host port (virtual board)
  clang libclang-rt-dev                   # sanitizers and libFuzzer for the firmware tests
  python3 python3-venv python3-dev        # the rig (sslpsk3 compiles against Python + OpenSSL)
  curl                                    # a reference HTTPS peer
)
VENV=.venv

say() { printf 'hil.sh: %s\n' "$*" >&2; }

missing_apt() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
  done
}

install_apt() {
  command -v dpkg-query >/dev/null || { say "not a Debian/Ubuntu system: install ${APT_PACKAGES[*]} by hand"; return 0; }
  local missing
  missing=$(missing_apt | tr '\n' ' ')
  [ -z "${missing// /}" ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      say "missing Debian packages: $missing"
      say "install them as root: apt-get install -y $missing"
      exit 1
    fi
  fi
  say "installing: $missing"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

setup_venv() {
  local stamp="$VENV/.hil-installed" want
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
    echo "$want" > "$stamp"
  fi
}

setup() { install_apt; setup_venv; }

run_tests() {
  if [ -x firmware/host/check.sh ]; then
    firmware/host/check.sh
  fi
  "$VENV/bin/ruff" check rig tests conftest.py bench
  "$VENV/bin/mypy"
  local rc=0
  "$VENV/bin/python" -m pytest "$@" || rc=$?
  [ "$rc" -eq 5 ] && { say "pytest collected no tests"; return 1; }
  return "$rc"
}

cmd=${1:-run}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  run)   setup; exec "$VENV/bin/hil" run "$@" ;;
  test)  setup; run_tests "$@" ;;
  *)     setup; exec "$VENV/bin/hil" "$cmd" "$@" ;;
esac
