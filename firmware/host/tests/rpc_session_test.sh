#!/bin/sh
# Mongoose OS RPC frames (rpc.c) against the real hil-agent binary on
# stdin/stdout, mixed with console lines: handshake, Sys.GetInfo,
# Config.Set (+ save), Config.Get (masked), an unknown method, a bad CRC,
# persistence across a restart, and Sys.Reboot (the host port re-executes).
set -eu
agent="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "rpc_session_test: $*" >&2; exit 1; }
psk=00112233445566778899aabbccddeeff
{
    printf 'version\n'
    printf '\004"""\004"""'
    printf '"""{"id":1,"method":"Sys.GetInfo"}"""'
    printf '"""{"id":2,"method":"Config.Set","params":{"config":{"mqtt":{"server":"127.0.0.1:1","ssl_psk_identity":"dev","ssl_psk_key":"%s"}},"save":true}}"""' "$psk"
    printf 'config get mqtt.server\n'
    printf '"""{"id":3,"method":"Config.Get","params":{"key":"mqtt"}}"""\n'
    printf 'junk"""{"id":4,"method":"Foo.Bar"}"""'
    printf '"""{"id":5,"method":"Sys.GetInfo"}00000000"""'
    printf '@t1 status\n'
    printf '"""{"id":6,"method":"Sys.Reboot"}"""'
} | "$agent" --state "$dir/s.state" >"$dir/out" 2>"$dir/err"
cat "$dir/out"
eot=$(printf '\004')
grep -qF "\"\"\"$eot\"\"\"" "$dir/out" || fail "no handshake answer"
[ "$(grep -cF "\"\"\"$eot\"\"\"" "$dir/out")" = 2 ] || fail "not one answer per handshake"
grep -qx 'version=[0-9.]*' "$dir/out" || fail "console line before the handshake"
grep -Eq '^"""\{"id":1,"src":"hil-agent","result":\{"id":"hil-agent","app":"hil-agent","fw_version":"[0-9.]+",.*"variant":"(native|esp)".*\}[0-9a-f]{8}"""$' "$dir/out" || fail "Sys.GetInfo"
grep -Eq '^"""\{"id":2,"src":"hil-agent","result":\{"saved":true\}\}[0-9a-f]{8}"""$' "$dir/out" || fail "Config.Set"
grep -Eq '^I \([0-9]+\) hil: rpc: Config.Set id 2: ok mqtt.server mqtt.ssl_psk_identity mqtt.ssl_psk_key$' "$dir/out" || fail "Config.Set log line"
grep -qx 'mqtt.server=127.0.0.1:1' "$dir/out" || fail "console after a frame"
grep -qF '"ssl_psk_key":"<set, 16 bytes>"' "$dir/out" || fail "Config.Get masking"
grep -qF '"error":{"code":404,"message":"No handler for Foo.Bar"}' "$dir/out" || fail "404"
grep -q 'unknown command' "$dir/out" && fail "garbage before a frame was run as a command"
grep -Eq '^E \([0-9]+\) hil: rpc: frame dropped: crc mismatch \(frame says 00000000, got [0-9a-f]{8}\)$' "$dir/out" || fail "bad crc"
grep -q '"id":5' "$dir/out" && fail "a frame with a bad crc was answered"
grep -qx '@t1 OK' "$dir/out" || fail "tagged console command after frames"
grep -q "$psk" "$dir/out" && fail "secret printed"
grep -Eq '^"""\{"id":6,"src":"hil-agent","result":null\}[0-9a-f]{8}"""$' "$dir/out" || fail "Sys.Reboot response"
[ "$(grep -c 'hil: hil-agent .* ready' "$dir/out")" = 2 ] || fail "Sys.Reboot did not restart"
# every frame's CRC (zlib's crc32 of the JSON), when python3 is there to check it
if command -v python3 >/dev/null 2>&1; then
    python3 - "$dir/out" <<'PY' || fail "a response frame's crc32 is wrong"
import re, sys, zlib
data = open(sys.argv[1], "rb").read()
frames = re.findall(rb'"""(\{.*?\})([0-9a-f]{8})"""', data)
assert len(frames) == 5, frames
for body, crc in frames:
    assert zlib.crc32(body) == int(crc, 16), body
PY
fi
# the Mongoose OS way: FS.Put a file, then a PEM setting names it
pem=$(printf -- '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n' | base64 -w0)
{
    printf '"""{"id":1,"method":"FS.Put","params":{"filename":"ca.pem","data":"%s"}}"""' "$pem"
    printf '"""{"id":2,"method":"FS.List"}"""'
    printf '"""{"id":3,"method":"Config.Set","params":{"config":{"mqtt":{"ssl_ca_cert":"ca.pem"}}}}"""'
    printf '"""{"id":4,"method":"Config.Set","params":{"config":{"mqtt":{"ssl_ca_cert":"none.pem"}}}}"""'
} | "$agent" --state "$dir/f.state" >"$dir/fs"
cat "$dir/fs"
grep -Eq '^"""\{"id":1,"src":"hil-agent","result":null\}[0-9a-f]{8}"""$' "$dir/fs" || fail "FS.Put"
grep -Eq '^I \([0-9]+\) hil: rpc: FS.Put id 1: ok ca.pem \([0-9]+ bytes\)$' "$dir/fs" || fail "FS.Put log line"
grep -Eq '^"""\{"id":2,"src":"hil-agent","result":\["ca.pem"\]\}[0-9a-f]{8}"""$' "$dir/fs" || fail "FS.List"
# the file's content reached the settings' validation (it is no certificate)
grep -Eq '^"""\{"id":3,"src":"hil-agent","error":\{"code":400,"message":"mqtt.ssl_ca_cert: ' "$dir/fs" || fail "Config.Set with a file name"
grep -qF '"message":"mqtt.ssl_ca_cert: no file '"'"'none.pem'"'"' (FS.Put it first, or give the PEM text)"' "$dir/fs" || fail "Config.Set with an unknown file"
# saved by Config.Set {"save": true}: the next boot has it
printf '"""{"id":1,"method":"Config.Get","params":{"key":"mqtt.server"}}"""' |
    "$agent" --state "$dir/s.state" | grep -Eq '^"""\{"id":1,"src":"hil-agent","result":"127.0.0.1:1"\}[0-9a-f]{8}"""$' ||
    fail "Config.Set save did not persist"
echo "rpc_session_test: ok"
