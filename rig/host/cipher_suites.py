"""Cipher-suite names across the two TLS stacks, via the real `openssl ciphers -stdname`.

Mosquitto (OpenSSL) names suites `PSK-AES128-CCM8`; the device (mbedTLS) names the same suite
`TLS-PSK-WITH-AES-128-CCM-8`, which is the IANA name with '-' for '_'.
"""

from __future__ import annotations

import functools
import subprocess

from rig.errors import RigError


class SuiteError(RigError):
    pass


@functools.lru_cache(maxsize=32)
def openssl_order(cipher_list: str) -> tuple[tuple[str, str], ...]:
    """(openssl name, mbedTLS name) of each TLS 1.2 suite in `cipher_list`, in OpenSSL's order."""
    try:
        proc = subprocess.run(["openssl", "ciphers", "-stdname", cipher_list],
                              capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise SuiteError(f"cannot run openssl: {exc}") from exc
    if proc.returncode != 0:
        raise SuiteError(f"openssl rejects cipher list {cipher_list!r}: {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "-" and parts[0].startswith("TLS_") and \
                "_WITH_" in parts[0]:
            out.append((parts[2], parts[0].replace("_", "-")))
    return tuple(out)


def mbedtls_name(openssl_name: str) -> str:
    """The mbedTLS (IANA) name of an OpenSSL suite name, e.g. what Python's ssl reports; the
    OpenSSL name itself when openssl does not know it as a TLS 1.2 suite."""
    for name, mbedtls in openssl_order(openssl_name):
        if name == openssl_name:
            return mbedtls
    return openssl_name


def expected_suite(broker_ciphers: str, device_suites: str) -> str | None:
    """The suite Mosquitto picks (it applies server preference) when both lists are explicit:
    its first suite that the device also offers. None when either side uses its defaults."""
    if not broker_ciphers or not device_suites:
        return None
    offered = set(device_suites.split(":"))
    for _openssl_name, mbedtls_name in openssl_order(broker_ciphers):
        if mbedtls_name in offered:
            return mbedtls_name
    raise SuiteError(f"no suite in common between the broker's {broker_ciphers!r} and the "
                     f"device's {device_suites!r}")


def from_iana(iana_name: str) -> str:
    """The mbedTLS name of a suite by its IANA name (what Wireshark shows): `TLS_PSK_WITH_AES_
    128_CCM_8` -> `TLS-PSK-WITH-AES-128-CCM-8`; a TLS 1.3 suite (`TLS_AES_128_GCM_SHA256`) ->
    `TLS1-3-AES-128-GCM-SHA256`, as mbedTLS 3 calls it."""
    if iana_name.startswith("TLS_") and "_WITH_" not in iana_name:
        return "TLS1-3-" + iana_name[len("TLS_"):].replace("_", "-")
    return iana_name.replace("_", "-")
