"""The generated PKI: good chains verify with the real `openssl verify`, the negative set is
what its name says, secrets are 0600, and only missing or stale items are (re)made."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from rig.config import HilConfig, load
from rig.pki import Pki, PkiError

CONFIG = """
[[boards]]
name = "v0"
kind = "virtual"
[broker]
host = "192.0.2.10"
extra_names = ["broker.hil.test"]
[device]
id = "dev-7"
psk_bytes = {psk}
[pki]
key_type = "{key}"
"""


def make(tmp_path: Path, key: str = "ec-p256", psk: int = 16) -> HilConfig:
    path = tmp_path / "hil.toml"
    path.write_text(CONFIG.format(key=key, psk=psk))
    return load(path)


def cert(pki: Pki, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.cert(name).read_bytes())


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


def test_broker_sans_have_each_ip_also_as_dns(generated: Pki) -> None:
    san = cert(generated, "broker").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    dns = set(san.value.get_values_for_type(x509.DNSName))
    ips = {str(i) for i in san.value.get_values_for_type(x509.IPAddress)}
    assert {"192.0.2.10", "127.0.0.1"} <= ips
    assert {"192.0.2.10", "127.0.0.1", "broker.hil.test"} <= dns


def test_device_web_cert_covers_how_the_rig_reaches_a_board(generated: Pki) -> None:
    web = cert(generated, "device-web")
    san = web.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert web.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    assert {"localhost", "127.0.0.1"} <= set(san.get_values_for_type(x509.DNSName))
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = web.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_device_cert_cn_is_the_device_id(generated: Pki) -> None:
    cn = cert(generated, "device").subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "dev-7"


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


def test_secrets_are_private_and_certs_public(generated: Pki) -> None:
    for name in ("ca", "broker", "device", "other-device"):
        assert stat.S_IMODE(generated.key(name).stat().st_mode) == 0o600
        assert stat.S_IMODE(generated.cert(name).stat().st_mode) == 0o644
    assert stat.S_IMODE(generated.psk_path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(generated.psk_hex())) == 16


def test_second_run_keeps_everything(generated: Pki) -> None:
    before = {p.name: p.read_bytes() for p in generated.dir.iterdir()}
    rows = generated.ensure()
    assert {r.state for r in rows} == {"ok"}
    assert before == {p.name: p.read_bytes() for p in generated.dir.iterdir()}


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


def test_missing_item_is_made_alone(generated: Pki) -> None:
    ca_before = generated.cert("ca").read_bytes()
    generated.cert("device").unlink()
    states = {r.name: r.state for r in generated.ensure()}
    assert states["device"] == "created"
    assert states["ca"] == states["broker"] == "ok"
    assert generated.cert("ca").read_bytes() == ca_before


def test_changed_host_reissues_broker_certs(tmp_path: Path, generated: Pki) -> None:
    path = tmp_path / "hil.toml"
    path.write_text(path.read_text().replace("192.0.2.10", "192.0.2.11"))
    states = {r.name: r.state for r in Pki(load(path)).ensure()}
    assert states["broker"] == "renewed" and states["device"] == "ok"


def test_psk_length_follows_config_and_bad_psk_is_replaced(tmp_path: Path) -> None:
    pki = Pki(make(tmp_path, psk=32))
    pki.ensure()
    assert len(pki.psk_hex()) == 64
    pki.psk_path.write_text("zz\n")
    with pytest.raises(PkiError, match="expected 64 hex digits") as info:
        pki.psk_hex()
    assert "zz" not in str(info.value)
    pki.ensure()
    assert len(pki.psk_hex()) == 64


def test_status_reports_missing_without_creating(tmp_path: Path) -> None:
    pki = Pki(make(tmp_path))
    assert {r.state for r in pki.status()} == {"missing"}
    assert not pki.dir.exists()
