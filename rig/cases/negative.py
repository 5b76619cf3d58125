"""The negative matrix: broken configurations and the verdict each must produce on both sides.

Each case says how the broker and the device are set up wrong, which step fails, which log lines
the device prints, what the device's ERR says and what reason the broker logs. The same table
drives rig/cases/test_negative.py and docs/negative-matrix.md (`python -m rig.cases.negative`
writes it; a test fails when the file and the table differ), so the documentation cannot drift
from what is asserted.

Expected texts are plain substrings (not patterns) so they read the same in the docs. They were
measured against Mosquitto 2.0.11 / OpenSSL 3.0 and the agent on mbedTLS 2.28.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rig.config import HilConfig, Mode
from rig.device.provision import Setting, mqtt_settings
from rig.pki import Pki

Step = Literal["provision", "connect"]
PskChange = Literal["right", "wrong", "short"]

HANDSHAKE_FAILED = "MQTT0 TLS handshake failed"
RESET = f"{HANDSHAKE_FAILED}: -0x0050 NET - Connection was reset by peer"
RESET_ERR = "TLS handshake failed (connection reset by broker, see broker log)"
# the TLS alerts these cases meet (RFC 5246 / 8446 names, as the agent prints them)
ALERT_NAMES = {20: "bad_record_mac", 40: "handshake_failure", 45: "certificate_expired",
               48: "unknown_ca", 115: "unknown_psk_identity"}

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "negative-matrix.md"  # a checkout's


@dataclass(frozen=True)
class NegativeCase:
    id: str  # <mode>-<what>, used in test ids and JUnit names
    mode: Mode
    title: str  # what is broken, in words
    # the broker's side of the set-up
    broker_cert: str = "broker"  # PKI item the broker presents
    broker_ciphers: str | None = None  # None: the mode's list from hil.toml
    broker_anonymous: bool = True
    listening: bool = True  # False: no broker at all on the port the device dials
    # the device's side of the set-up
    device_ca: str = "ca"
    device_cert: str | None = "device"  # mutual only
    device_psk: PskChange = "right"
    device_identity: str | None = None  # None: hil.toml's identity
    device_suites: str | None = None  # None: the mode's list from hil.toml
    # the verdict
    fails_at: Step = "connect"
    device_lines: tuple[str, ...] = ()  # log line texts, in this order
    device_error: str = ""  # in the ERR reason of the failing step
    broker_reason: str | None = None  # in the broker's log; None: the broker sees nothing
    # The broker refuses after reading the device's whole flight: it sends this fatal alert and
    # closes at once, so the device sees either the alert or (when the reset overtakes it) only
    # a connection reset. Both are right; which one is a race on the wire.
    broker_alert: int | None = None

    def device_expectations(self) -> list[tuple[tuple[str, ...], str]]:
        """The acceptable (device lines, ERR text) pairs: the main one, then the alert race."""
        out = [(self.device_lines, self.device_error)]
        if self.broker_alert is not None:
            name = ALERT_NAMES[self.broker_alert]
            out.append((
                (f"{HANDSHAKE_FAILED}: -0x7780 SSL - A fatal alert message was received from "
                 f"our peer (alert {self.broker_alert} {name})",),
                f"TLS handshake failed (broker sent alert {self.broker_alert} {name})"))
        return out

    @property
    def setup(self) -> str:
        """One line for the docs: what differs from a working cell."""
        parts: list[str] = []
        if not self.listening:
            parts.append("nothing listens on mqtt.server's port")
        if self.broker_cert != "broker":
            parts.append(f"broker presents `{self.broker_cert}`")
        if self.broker_ciphers is not None:
            parts.append(f"broker `ciphers {self.broker_ciphers}`")
        if not self.broker_anonymous:
            parts.append("broker `allow_anonymous false`")
        if self.device_ca != "ca":
            parts.append(f"device trusts `{self.device_ca}`")
        if self.mode == "mutual" and self.device_cert != "device":
            parts.append(f"device cert `{self.device_cert}`" if self.device_cert
                         else "device has no client certificate")
        if self.device_psk == "wrong":
            parts.append("device has another PSK")
        if self.device_psk == "short":
            parts.append("device PSK of 15 bytes")
        if self.device_identity is not None:
            parts.append(f"device identity `{self.device_identity}`")
        if self.device_suites is not None:
            parts.append(f"device offers `{self.device_suites}`")
        return "; ".join(parts)


CASES: tuple[NegativeCase, ...] = (
    NegativeCase(
        "ca-unknown-ca", "ca", "broker certificate from an unknown CA",
        broker_cert="other-broker",
        device_lines=("MQTT0 TLS handshake failed: -0x2700",
                      "MQTT0 verify: The certificate is not correctly signed by the trusted CA"),
        device_error="TLS handshake failed (certificate verify failed)",
        broker_reason="tlsv1 alert unknown ca"),
    NegativeCase(
        "ca-wrong-host", "ca", "broker certificate for another host name",
        broker_cert="broker-wronghost",
        device_lines=("MQTT0 TLS handshake failed: -0x2700",
                      "MQTT0 verify: The certificate Common Name (CN) does not match"),
        device_error="TLS handshake failed (certificate verify failed)",
        broker_reason="sslv3 alert bad certificate"),
    NegativeCase(
        "ca-sha1", "ca", "broker certificate signed with SHA-1",
        broker_cert="broker-sha1", broker_ciphers="DEFAULT:@SECLEVEL=0",
        device_lines=("MQTT0 TLS handshake failed: -0x2700",
                      "MQTT0 verify: The certificate is signed with an unacceptable hash"),
        device_error="TLS handshake failed (certificate verify failed)",
        broker_reason="sslv3 alert certificate unknown"),
    NegativeCase(
        "ca-expired", "ca", "expired broker certificate",
        broker_cert="broker-expired",
        device_lines=("MQTT0 TLS handshake failed: -0x2700",
                      "MQTT0 verify: The certificate validity has expired"),
        device_error="TLS handshake failed (certificate verify failed)",
        broker_reason="sslv3 alert certificate expired"),
    NegativeCase(
        "mutual-no-cert", "mutual", "device without a client certificate",
        device_cert=None,
        device_lines=(RESET,), device_error=RESET_ERR,
        broker_reason="peer did not return a certificate", broker_alert=40),
    NegativeCase(
        "mutual-other-ca", "mutual", "client certificate from another CA",
        device_cert="other-device",
        device_lines=(RESET,), device_error=RESET_ERR,
        broker_reason="certificate verify failed", broker_alert=48),
    NegativeCase(
        "mutual-expired", "mutual", "expired client certificate",
        device_cert="device-expired",
        device_lines=(RESET,), device_error=RESET_ERR,
        broker_reason="certificate verify failed", broker_alert=45),
    NegativeCase(
        "psk-wrong-key", "psk", "wrong pre-shared key",
        device_psk="wrong",
        device_lines=("MQTT0 TLS handshake failed: -0x7780 SSL - A fatal alert message was "
                      "received from our peer (alert 20 bad_record_mac)",),
        device_error="TLS handshake failed (broker sent alert 20 bad_record_mac)",
        broker_reason="decryption failed or bad record mac"),
    NegativeCase(
        "psk-unknown-identity", "psk", "PSK identity the broker does not know",
        device_identity="hil-unknown-identity",
        device_lines=(RESET,), device_error=RESET_ERR,
        broker_reason="psk identity not found", broker_alert=115),
    NegativeCase(
        "psk-no-shared-cipher", "psk", "no PSK suite in common",
        device_suites="TLS-PSK-WITH-AES-256-CBC-SHA384",
        device_lines=("MQTT0 TLS handshake failed: -0x7780 SSL - A fatal alert message was "
                      "received from our peer (alert 40 handshake_failure)",),
        device_error="TLS handshake failed (broker sent alert 40 handshake_failure)",
        broker_reason="no shared cipher"),
    NegativeCase(
        "psk-key-length", "psk", "PSK of the wrong length",
        device_psk="short", fails_at="provision",
        device_error="expected 32 or 64 hex digits (16 or 32 bytes), got 30",
        broker_reason=None),
    NegativeCase(
        "ca-not-authorised", "ca", "broker refuses the client (not authorised)",
        broker_anonymous=False,
        device_lines=("ciphersuite: TLS-ECDHE-", "MQTT0 TCP connect ok (0)", "MQTT0 CONNACK 5"),
        device_error="CONNACK 5 (not authorised)",
        broker_reason="disconnected, not authorised."),
    NegativeCase(
        "ca-nothing-listening", "ca", "nothing listening at mqtt.server",
        listening=False,
        device_lines=("MQTT0 TCP connect failed: Connection refused",),
        device_error="TCP connect failed (Connection refused)",
        broker_reason=None),
)


def case(case_id: str) -> NegativeCase:
    for c in CASES:
        if c.id == case_id:
            return c
    raise KeyError(f"no negative case {case_id!r}; known: {', '.join(c.id for c in CASES)}")


def device_settings(config: HilConfig, pki: Pki, c: NegativeCase, port: int) -> list[Setting]:
    """The mqtt.* settings the device gets in case `c` (the mode's settings, changed as the case
    says). A wrong or short PSK is random: it is still a key, and is never shown."""
    out = mqtt_settings(config, pki, c.mode, port, ca=c.device_ca, client_cert=c.device_cert)
    changed: dict[str, bytes] = {}
    if c.device_psk == "wrong":
        changed["mqtt.ssl_psk_key"] = secrets.token_hex(config.device.psk_bytes).encode()
    elif c.device_psk == "short":
        changed["mqtt.ssl_psk_key"] = secrets.token_hex(15).encode()
    if c.device_identity is not None:
        changed["mqtt.ssl_psk_identity"] = c.device_identity.encode()
    if c.device_suites is not None:
        changed["mqtt.ssl_cipher_suites"] = c.device_suites.encode()
    return [Setting(s.key, changed.pop(s.key, s.value)) for s in out] + [
        Setting(k, v) for k, v in changed.items()]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/negative-matrix.md, generated from CASES."""
    out = [
        "# Negative matrix: what each broken configuration looks like",
        "",
        "Generated by `python -m rig.cases.negative` from `rig/cases/negative.py`, the same table",
        "`rig/cases/test_negative.py` asserts (tests/unit/test_negative_doc.py fails if this",
        "file is stale). Every case runs",
        "on virtual boards by default and on physical boards with `pytest --hil`; after each one",
        "the agent must still answer `status`. `hil run` shows them as expected refusals: a",
        "case passes when both sides give these reasons.",
        "",
        "Device lines are log texts (after `I (ms) hil: `), in order; \"ERR\" is the reason the",
        "failing command (`mqtt connect`, or the `config set` for a bad key) ends with. Measured",
        "with Mosquitto 2.0.11 on OpenSSL 3.0 and the agent on mbedTLS 2.28.",
        "",
        "Where the broker refuses after reading the device's whole first flight (mutual and PSK",
        "identity cases) it sends a fatal alert and closes at once; the device then reports the",
        "alert or, when the TCP reset overtakes it, only a reset (the broker's log has the",
        "reason). Both are accepted. Mosquitto logs the same `certificate verify failed` for a",
        "client certificate from another CA and for an expired one; the alert, when the device",
        "sees it, tells them apart.",
        "",
        "| case | mode | what is wrong | set-up | device prints | device ERR | broker logs |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CASES:
        lines = "<br>".join(f"`{_cell(t)}`" for t in c.device_lines) or "(nothing)"
        error = f"`{_cell(c.device_error)}`"
        for alt_lines, alt_error in c.device_expectations()[1:]:
            lines += "<br>*or, when the alert beats the reset:*<br>" + "<br>".join(
                f"`{_cell(t)}`" for t in alt_lines)
            error += f"<br>*or* `{_cell(alt_error)}`"
        broker = f"`{_cell(c.broker_reason)}`" if c.broker_reason else (
            "(no broker listening)" if not c.listening else "(no connection: nothing sent)")
        out.append(f"| {c.id} | {c.mode} | {_cell(c.title)} | {_cell(c.setup)} | {lines} | "
                   f"{error} | {broker} |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    text = markdown()
    if check:
        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is stale: run python -m rig.cases.negative", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
