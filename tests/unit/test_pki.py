"""The generated PKI (made in-process with `cryptography`, no process started): names and
SANs, secrets are 0600, and only missing or stale items are (re)made. What needs the real
`openssl verify` is in tests/integration/test_pki_openssl.py."""

from __future__ import annotations

import stat
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


@pytest.fixture
def generated(tmp_path: Path) -> Pki:
    pki = Pki(make(tmp_path))
    pki.ensure()
    return pki


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
