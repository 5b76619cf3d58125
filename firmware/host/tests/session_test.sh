#!/bin/sh
# Scripted console session against the real hil-agent binary (stdin/stdout).
set -eu
agent="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'version\nconfig set mqtt.ssl_psk_key 00\nconfig set mqtt.server 127.0.0.1:1\nconfig set mqtt.pass s3cr3t\nconfig save\nstatus\nhttp start\nhttp stop\nmqtt connect\n@s1.2 version\n@s1.3\tconfig\tget mqtt.server\n@s1/4 version\n' |
    "$agent" --state "$dir/s.state" >"$dir/out" 2>"$dir/err"
cat "$dir/out"
fail() { echo "session_test: $*" >&2; exit 1; }
grep -Eq '^I \([0-9]+\) hil: hil-agent [0-9.]+ ready \(mbedtls [0-9.]+, build [^ ]+\)$' "$dir/out" || fail "no ready line"
grep -qx 'version=1.0.0' "$dir/out" || fail "no version line"
grep -qx 'ERR mqtt.ssl_psk_key: expected 32 or 64 hex digits (16 or 32 bytes), got 2' "$dir/out" || fail "psk ERR"
grep -qx 'mqtt=disconnected' "$dir/out" || fail "status"
grep -qx 'http=stopped' "$dir/out" || fail "status http="
grep -qx 'ERR http start: http.listen_addr is not set' "$dir/out" || fail "http start ERR"
grep -Eq '^E \([0-9]+\) hil: MQTT0 TCP connect failed: ' "$dir/out" || fail "no TCP connect failed line"
grep -q '^ERR mqtt connect: TCP connect failed' "$dir/out" || fail "connect ERR"
# the connect is pending (later lines queued): its final line comes before the next command's
awk '/^ERR mqtt connect:/ { c = NR } /^@s1\.2 OK$/ { v = NR } END { exit !(c && v && c < v) }' \
    "$dir/out" || fail "final lines out of command order"
# tagged commands: the final line carries the tag, data lines do not
grep -qx '@s1.2 OK' "$dir/out" || fail "tagged OK"
grep -A1 -x 'mqtt.server=127.0.0.1:1' "$dir/out" | grep -qx '@s1.3 OK' || fail "tagged data command"
grep -qx 'ERR bad tag (1..24 of A-Z a-z 0-9 . _ -)' "$dir/out" || fail "bad tag"
[ "$(grep -c -E '^(@[^ ]+ )?(OK|ERR .*)$' "$dir/out")" = 12 ] || fail "not one final line per command"
grep -q 's3cr3t' "$dir/out" "$dir/s.state.tmp" 2>/dev/null && fail "secret printed" || true
[ "$(stat -c %a "$dir/s.state")" = 600 ] || fail "state file mode not 0600"
# settings survive a restart; a corrupt state file is a W line, not a crash
printf 'config get mqtt.server\n' | "$agent" --state "$dir/s.state" | grep -qx 'mqtt.server=127.0.0.1:1' || fail "not persisted"
printf 'garbage' >"$dir/s.state"
printf 'config get mqtt.server\n' | "$agent" --state "$dir/s.state" >"$dir/out2"
grep -Eq '^W \([0-9]+\) hil: saved settings ignored' "$dir/out2" || fail "no W line for corrupt state"
grep -qx 'mqtt.server=<unset>' "$dir/out2" || fail "corrupt state not ignored"
# the board's clock: --clock unset starts at 1970-01-01 + uptime, not set, until `clock set`;
# --clock host is the host's clock, set; the variant picks the default
printf 'clock\nclock set 1700000000\nclock\nclock set -5\nversion\n' |
    "$agent" --state "$dir/c.state" --clock unset >"$dir/clk"
grep -Eqx 'clock=[0-9]' "$dir/clk" || fail "--clock unset: clock= not 1970 + uptime"
grep -qx 'clock_set=no' "$dir/clk" || fail "--clock unset: clock_set=no"
grep -qx 'clock_utc=2023-11-14T22:13:2[0-9]Z' "$dir/clk" || fail "clock set did not move the clock"
grep -qx 'clock_set=yes' "$dir/clk" || fail "clock set: clock_set=yes"
grep -Eq '^I \([0-9]+\) hil: clock set to 2023-11-14T22:13:20Z \(1700000000\)$' "$dir/clk" || fail "clock set log line"
grep -qx "ERR clock set: '-5' is not a number of seconds (decimal digits only, no sign)" "$dir/clk" || fail "clock set ERR"
grep -Eqx 'bits=(32|64)' "$dir/clk" || fail "version: bits="
grep -Eqx 'variant=(native|esp)' "$dir/clk" || fail "version: variant="
printf 'clock\n' | "$agent" --state "$dir/c.state" --clock host >"$dir/clk2"
host_now=$(date +%s)
board_now=$(sed -n 's/^clock=//p' "$dir/clk2")
[ $((host_now - board_now)) -le 5 ] && [ $((board_now - host_now)) -le 5 ] || fail "--clock host: $board_now vs host $host_now"
grep -qx 'clock_set=yes' "$dir/clk2" || fail "--clock host: clock_set=yes"
variant=$(sed -n 's/^variant=//p' "$dir/clk")
printf 'clock\n' | "$agent" --state "$dir/c.state" >"$dir/clk3"
if [ "$variant" = esp ]; then want=no; else want=yes; fi
grep -qx "clock_set=$want" "$dir/clk3" || fail "variant $variant: default clock_set should be $want"
"$agent" --clock bogus </dev/null >/dev/null 2>&1 && fail "--clock bogus accepted" || [ $? = 2 ] || fail "--clock bogus: exit code"
"$agent" --version | grep -Eqx "hil-agent [0-9.]+ \(mbedtls [0-9.]+, (32|64)-bit, $variant, build [^ ]+\)" || fail "--version line"
echo "session_test: ok"
