#!/bin/sh
# Settings from an ESP-IDF NVS partition image (hil-agent --nvs, nvs_settings.c) on the
# real binary: the committed generator-made image tests/nvs/provision_v2.bin
# (provision.csv) sets mqtt.server from broker_uri, the PSK from a raw-key blob,
# mqtt.enable from a u8; the boot connect follows (nothing listens on port 1, so it is
# refused and logged); nothing of it reaches the state file; a damaged image is one E
# line and the agent starts without it. The PSK is never printed.
set -eu
agent="$1"
here=$(cd "$(dirname "$0")" && pwd)
img="$here/nvs/provision_v2.bin"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "nvs_session_test: $*" >&2; exit 1; }
psk=00112233445566778899aabbccddeeff
printf 'config get mqtt.server\nconfig get mqtt.enable\nconfig get mqtt.ssl_psk_key\nconfig get mqtt.client_id\n' |
    "$agent" --state "$dir/s.state" --nvs "$img" >"$dir/out" 2>"$dir/err"
cat "$dir/out"
grep -Eq '^I \([0-9]+\) hil: nvs: 6 settings from namespace hil \(this boot only\): mqtt.server mqtt.client_id mqtt.ssl_psk_identity mqtt.ssl_psk_key mqtt.ssl_cipher_suites mqtt.enable$' "$dir/out" || fail "no nvs line"
awk '/ hil: nvs: 6 settings/ { n = NR } / hil: hil-agent .* ready/ { r = NR } END { exit !(n && r && n < r) }' "$dir/out" || fail "nvs line not before the ready line"
grep -qx 'mqtt.server=127.0.0.1:1' "$dir/out" || fail "broker_uri"
grep -qx 'mqtt.enable=true' "$dir/out" || fail "mqtt_enable"
grep -qx 'mqtt.ssl_psk_key=<set, 16 bytes>' "$dir/out" || fail "psk_key"
grep -qx 'mqtt.client_id=dev-nvs-1' "$dir/out" || fail "client_id"
grep -Eq '^I \([0-9]+\) hil: MQTT0 connecting to 127.0.0.1:1$' "$dir/out" || fail "no boot connect"
grep -Eq '^E \([0-9]+\) hil: mqtt.enable: mqtt connect: TCP connect failed \(' "$dir/out" || fail "boot connect outcome"
[ "$(grep -c -E '^(@[^ ]+ )?(OK|ERR .*)$' "$dir/out")" = 4 ] || fail "not one final line per command"
grep -q "$psk" "$dir/out" && fail "PSK printed"
[ -e "$dir/s.state" ] && fail "the image's settings were saved"
# saved settings stay when the image is refused; one E line names the image
printf 'config set mqtt.server saved.example:1\nconfig save\n' | "$agent" --state "$dir/k.state" >/dev/null
head -c 12288 "$img" >"$dir/bad.bin"
printf '\001' | dd of="$dir/bad.bin" bs=1 seek=106 conv=notrunc 2>/dev/null
printf 'config get mqtt.server\n' | "$agent" --state "$dir/k.state" --nvs "$dir/bad.bin" >"$dir/bad"
cat "$dir/bad"
grep -Eq "^E \([0-9]+\) hil: nvs: image $dir/bad.bin refused: page 0 entry 1 \(offset 0x60\): .* \(no settings from NVS\)$" "$dir/bad" || fail "damaged image"
grep -qx 'mqtt.server=saved.example:1' "$dir/bad" || fail "saved settings lost"
printf 'version\n' | "$agent" --state "$dir/k.state" --nvs "$dir/none.bin" >"$dir/none"
grep -Eq "^E \([0-9]+\) hil: nvs: $dir/none.bin: No such file or directory \(no settings from NVS\)$" "$dir/none" || fail "missing image"
echo "nvs_session_test: ok"
