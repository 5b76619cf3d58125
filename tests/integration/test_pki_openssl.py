"""The generated PKI against the real `openssl verify`: good chains verify, the negative set is
what its name says, and a renewed CA's certificates chain again (the rest of the PKI's tests,
which start no process, are in tests/unit/test_pki.py)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from rig.pki import Pki
from tests.unit.test_pki import cert, make


def openssl_verify(ca: Path, leaf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(leaf)],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def generated(tmp_path: Path) -> Pki:
    pki = Pki(make(tmp_path))
    pki.ensure()
    return pki


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_good_chains_verify_with_openssl(tmp_path: Path, key_type: str) -> None:
    pki = Pki(make(tmp_path, key=key_type))
    pki.ensure()
    for leaf in ("broker", "device", "device-web", "host-client"):
        result = openssl_verify(pki.cert("ca"), pki.cert(leaf))
        assert result.returncode == 0, result.stdout + result.stderr
    result = openssl_verify(pki.cert("other-ca"), pki.cert("other-device"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_negative_set(generated: Pki) -> None:
    now = dt.datetime.now(dt.UTC)
    sha1 = cert(generated, "broker-sha1")
    assert sha1.signature_hash_algorithm is not None
    assert sha1.signature_hash_algorithm.name == "sha1"
    assert cert(generated, "broker-expired").not_valid_after_utc < now
    assert cert(generated, "device-expired").not_valid_after_utc < now
    expired = openssl_verify(generated.cert("ca"), generated.cert("broker-expired"))
    assert "certificate has expired" in expired.stdout + expired.stderr
    wrong = cert(generated, "broker-wronghost")
    san = wrong.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["wrong-host.invalid"]
    assert san.get_values_for_type(x509.IPAddress) == []
    # The unrelated CA's certificates do not chain to the rig's CA.
    for name in ("other-device", "other-broker", "other-host-client"):
        assert openssl_verify(generated.cert("ca"), generated.cert(name)).returncode != 0


def test_expired_ca_renews_it_and_everything_it_signed(tmp_path: Path) -> None:
    pki = Pki(make(tmp_path))
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    pki.ensure(now=long_ago)  # everything "valid" was valid a year ago: expired now
    psk = pki.psk_hex()
    states = {r.name: r.state for r in pki.ensure()}
    assert states["ca"] == "renewed"
    assert states["broker"] == states["device"] == states["broker-expired"] == "renewed"
    assert states["psk"] == "ok" and pki.psk_hex() == psk
    assert openssl_verify(pki.cert("ca"), pki.cert("broker")).returncode == 0
    assert {r.state for r in pki.status()} == {"ok"}
