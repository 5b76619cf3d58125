"""Suite names from the wire (Wireshark shows IANA names) as mbedTLS prints them, so that a suite
read from a Server Hello compares with the one hil.toml implies (rig/host/cipher_suites.py)."""

from __future__ import annotations

import pytest

from rig.host.cipher_suites import from_iana


@pytest.mark.parametrize("iana, mbedtls", [
    ("TLS_PSK_WITH_AES_128_CCM_8", "TLS-PSK-WITH-AES-128-CCM-8"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"),
    ("TLS_AES_128_GCM_SHA256", "TLS1-3-AES-128-GCM-SHA256"),  # TLS 1.3: mbedTLS 3's name
])
def test_iana_names_become_mbedtls_names(iana: str, mbedtls: str) -> None:
    assert from_iana(iana) == mbedtls
