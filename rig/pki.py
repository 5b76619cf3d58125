"""The rig's test PKI: CA, broker and device certificates, a PSK, and the negative set.

Generated with `cryptography` into the directory named by hil.toml `[pki] dir`. Only what is
missing, expired (when it should not be), or no longer matches hil.toml is (re)made; a new CA
re-issues everything it signed. Private keys and the PSK are written 0600 for the user running
the rig; the broker is started as that same user (see rig.broker.mosquitto) so it can read them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rig.config import HilConfig
from rig.errors import RigError
from rig.local.locks import file_lock

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Role = Literal["ca", "server", "client"]
Validity = Literal["valid", "expired"]

RENEW_MARGIN = dt.timedelta(days=1)


@dataclass(frozen=True)
class CertSpec:
    """One certificate the rig needs, and what it is for."""

    name: str
    role: Role
    issuer: str | None  # name of the signing CA; None = self-signed
    common_name: str
    hosts: tuple[str, ...] = ()
    signature_hash: Literal["sha256", "sha1"] = "sha256"
    validity: Validity = "valid"
    purpose: str = ""


@dataclass(frozen=True)
class ItemStatus:
    name: str
    path: Path
    state: str  # ok | missing | expired | wrong | renewed | created
    detail: str


class PkiError(RigError):
    pass


def specs(config: HilConfig) -> list[CertSpec]:
    """The certificates for this hil.toml, CAs first."""
    hosts = broker_hosts(config)
    dev = config.device.id
    web = tuple(dict.fromkeys(config.device.web_names)) or ("localhost",)
    return [
        CertSpec("ca", "ca", None, "HIL Test CA", purpose="trusted CA (boards and host)"),
        CertSpec("broker", "server", "ca", hosts[0], hosts, purpose="broker server certificate"),
        CertSpec("device", "client", "ca", dev, purpose="device client certificate (mutual)"),
        CertSpec(
            "broker-sha1", "server", "ca", hosts[0], hosts, signature_hash="sha1",
            purpose="negative: broker cert signed with SHA-1",
        ),
        CertSpec(
            "broker-expired", "server", "ca", hosts[0], hosts, validity="expired",
            purpose="negative: expired broker cert",
        ),
        CertSpec(
            "broker-wronghost", "server", "ca", "wrong-host.invalid", ("wrong-host.invalid",),
            purpose="negative: broker cert for another host name",
        ),
        CertSpec(
            "device-expired", "client", "ca", dev, validity="expired",
            purpose="negative: expired device cert",
        ),
        CertSpec("device-web", "server", "ca", web[0], web,
                 purpose="device HTTPS server certificate"),
        CertSpec("host-client", "client", "ca", "hil-host",
                 purpose="host client certificate (HTTPS mutual: curl, Python)"),
        CertSpec("other-ca", "ca", None, "HIL Unrelated CA", purpose="negative: unrelated CA"),
        CertSpec(
            "other-broker", "server", "other-ca", hosts[0], hosts,
            purpose="negative: broker cert from the unrelated CA",
        ),
        CertSpec(
            "other-host-client", "client", "other-ca", "hil-host",
            purpose="negative: host client cert from the unrelated CA",
        ),
        CertSpec(
            "other-device", "client", "other-ca", dev,
            purpose="negative: device cert from the unrelated CA",
        ),
    ]


def broker_hosts(config: HilConfig) -> tuple[str, ...]:
    """Names the broker certificate covers: what boards dial first, then the rest."""
    names = [config.broker.host, *config.broker.extra_names, config.broker.bind]
    out: list[str] = []
    for n in names:
        if n and n not in out and n not in ("0.0.0.0", "::"):
            out.append(n)
    return tuple(out)


class Pki:
    """Paths of the generated material, and (re)generation."""

    def __init__(self, config: HilConfig) -> None:
        self.config = config
        self.dir = config.pki_dir
        self._specs = {s.name: s for s in specs(config)}

    def cert(self, name: str) -> Path:
        self._spec(name)
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        self._spec(name)
        return self.dir / f"{name}.key"

    @property
    def psk_path(self) -> Path:
        return self.dir / "psk.hex"

    def psk_hex(self) -> str:
        """The PSK as hex. A secret: never log or print it."""
        try:
            value = self.psk_path.read_text().strip()
        except FileNotFoundError:
            raise PkiError(f"{self.psk_path}: missing; run `hil pki init`") from None
        if not _valid_psk(value, self.config.device.psk_bytes):
            raise PkiError(
                f"{self.psk_path}: expected {self.config.device.psk_bytes * 2} hex digits; "
                "run `hil pki init` to replace it"
            )
        return value

    def _spec(self, name: str) -> CertSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise PkiError(f"unknown PKI item {name!r}; known: {', '.join(self._specs)}") from None

    # ------------------------------------------------------------------ status / ensure

    def status(self, now: dt.datetime | None = None) -> list[ItemStatus]:
        now = now or _now()
        out: list[ItemStatus] = []
        for spec in self._specs.values():
            problem = self._problem(spec, now, renewed=set())
            state = problem[0] if problem else "ok"
            out.append(ItemStatus(spec.name, self.cert(spec.name), state, problem[1] if problem
                                  else self._describe(spec)))
        psk_state, psk_detail = "ok", (
            f"identity {self.config.device.psk_identity!r}, "
            f"{self.config.device.psk_bytes} bytes (value hidden)"
        )
        try:
            self.psk_hex()
        except PkiError as exc:
            psk_state, psk_detail = ("missing" if not self.psk_path.exists() else "wrong"), str(exc)
        out.append(ItemStatus("psk", self.psk_path, psk_state, psk_detail))
        return out

    def ensure(self, now: dt.datetime | None = None) -> list[ItemStatus]:
        """Create what is missing or stale; returns what was done (kept items as 'ok')."""
        now = now or _now()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        with file_lock(self.dir / ".lock"):  # xdist workers share the PKI
            return self._ensure(now)

    def _ensure(self, now: dt.datetime) -> list[ItemStatus]:
        renewed: set[str] = set()
        out: list[ItemStatus] = []
        for spec in self._specs.values():
            problem = self._problem(spec, now, renewed)
            if problem is None:
                out.append(ItemStatus(spec.name, self.cert(spec.name), "ok", self._describe(spec)))
                continue
            self._issue(spec, now)
            renewed.add(spec.name)
            state = "created" if problem[0] == "missing" else "renewed"
            out.append(ItemStatus(spec.name, self.cert(spec.name), state, problem[1]))
        try:
            self.psk_hex()
            out.append(ItemStatus("psk", self.psk_path, "ok", "kept (value hidden)"))
        except PkiError:
            existed = self.psk_path.exists()
            value = secrets.token_bytes(self.config.device.psk_bytes).hex()
            _write_private(self.psk_path, value + "\n")
            out.append(ItemStatus("psk", self.psk_path, "renewed" if existed else "created",
                                  f"{self.config.device.psk_bytes} random bytes (value hidden)"))
        return out

    def _describe(self, spec: CertSpec) -> str:
        cert = _load_cert(self.cert(spec.name))
        assert cert is not None
        until = cert.not_valid_after_utc.strftime("%Y-%m-%d")
        sans = ""
        if spec.hosts:
            sans = " SAN " + ",".join(spec.hosts)
        return f"CN={spec.common_name}{sans} until {until} ({spec.purpose})"

    def _problem(
        self, spec: CertSpec, now: dt.datetime, renewed: set[str]
    ) -> tuple[str, str] | None:
        cert_path, key_path = self.cert(spec.name), self.key(spec.name)
        if not cert_path.exists() or not key_path.exists():
            return ("missing", f"{spec.purpose}: not generated yet")
        if spec.issuer and spec.issuer in renewed:
            return ("wrong", f"re-issued because {spec.issuer} was renewed")
        cert = _load_cert(cert_path)
        key = _load_key(key_path)
        if cert is None or key is None:
            return ("wrong", "unreadable certificate or key")
        if not _key_matches(cert, key) or _key_kind(key) != self.config.pki.key_type:
            return ("wrong", f"key does not match, or key type is not {self.config.pki.key_type}")
        if spec.validity == "valid" and cert.not_valid_after_utc - RENEW_MARGIN < now:
            return ("expired", f"expired or expiring on {cert.not_valid_after_utc:%Y-%m-%d}")
        if spec.validity == "expired" and cert.not_valid_after_utc >= now:
            return ("wrong", "should be expired but is still valid")
        if _common_name(cert) != spec.common_name or _hosts(cert) != set(spec.hosts):
            return ("wrong", "names differ from hil.toml")
        if spec.issuer:
            issuer = _load_cert(self.cert(spec.issuer))
            if issuer is None or not _signed_by(cert, issuer):
                return ("wrong", f"not signed by the current {spec.issuer}")
        algo = cert.signature_hash_algorithm
        if (algo.name if algo else "") != spec.signature_hash:
            return ("wrong", f"not signed with {spec.signature_hash}")
        return None

    # ------------------------------------------------------------------ issuing

    def renewed(self, name: str, directory: Path) -> tuple[Path, Path, int]:
        """A renewal of certificate `name` as a CA does it: the same subject, names and
        issuer, a new key and serial, valid from an hour ago (clock skew) for validity_days;
        written into `directory` (the key 0600), the PKI's own copy untouched. (certificate,
        key, serial)."""
        spec = self._spec(name)
        cert, key = directory / f"{name}-renewed.crt", directory / f"{name}-renewed.key"
        self._issue(spec, _now(), cert, key)
        loaded = _load_cert(cert)
        assert loaded is not None
        return cert, key, loaded.serial_number

    def _issue(self, spec: CertSpec, now: dt.datetime, cert_path: Path | None = None,
               key_path: Path | None = None) -> None:
        key = _new_key(self.config.pki.key_type)
        if spec.issuer is None:
            issuer_key: PrivateKey = key
            issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)])
            issuer_cert: x509.Certificate | None = None
        else:
            loaded_key = _load_key(self.key(spec.issuer))
            issuer_cert = _load_cert(self.cert(spec.issuer))
            if loaded_key is None or issuer_cert is None:
                raise PkiError(f"{spec.issuer} must exist before {spec.name}")
            issuer_key = loaded_key
            issuer_name = issuer_cert.subject
        if spec.validity == "expired":
            not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=2)
        else:
            not_before = now - dt.timedelta(hours=1)
            not_after = now + dt.timedelta(days=self.config.pki.validity_days)
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HIL rig"),
            x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name),
        ]) if spec.issuer else issuer_name
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer_cert is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        if spec.role == "ca":
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            builder = builder.add_extension(_key_usage(ca=True), True)
        else:
            builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            builder = builder.add_extension(_key_usage(ca=False), True)
            eku = (ExtendedKeyUsageOID.SERVER_AUTH if spec.role == "server"
                   else ExtendedKeyUsageOID.CLIENT_AUTH)
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), False)
        if spec.hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(_sans(spec.hosts)), False)
        cert = builder.sign(issuer_key, hashes.SHA256())
        if spec.signature_hash == "sha1":
            cert = _resign_sha1(cert, issuer_key)
        _write_private(key_path or self.key(spec.name), _key_pem(key))
        _write_public(cert_path or self.cert(spec.name),
                      cert.public_bytes(serialization.Encoding.PEM))


# --------------------------------------------------------------------------- helpers


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _valid_psk(value: str, nbytes: int) -> bool:
    if len(value) != nbytes * 2:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _new_key(kind: str) -> PrivateKey:
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _key_kind(key: PrivateKey) -> str:
    return "rsa-2048" if isinstance(key, rsa.RSAPrivateKey) else "ec-p256"


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


def _sans(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Each IP goes in twice: as an IP SAN and as a DNS SAN, since mbedTLS 2.x only matches the
    latter (see DESIGN.md)."""
    out: list[x509.GeneralName] = []
    for host in hosts:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            out.append(x509.DNSName(host))
            continue
        out.append(x509.IPAddress(ip))
        out.append(x509.DNSName(str(ip)))
    return out


def _hosts(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    names = {str(v) for v in ext.value.get_values_for_type(x509.DNSName)}
    names |= {str(v) for v in ext.value.get_values_for_type(x509.IPAddress)}
    return names


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_key(path: Path) -> PrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else None


def _key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return cert.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    pub = issuer.public_key()
    algo = cert.signature_hash_algorithm
    if algo is None:
        return False
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algo)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algo))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes | str) -> None:
    """Write a secret 0600 from the start (never briefly world-readable)."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# --- SHA-1 re-signing. cryptography refuses SHA-1 in CertificateBuilder.sign, so the negative
# certificate is built with SHA-256 and its TBS is re-encoded with a SHA-1 algorithm identifier
# and signed by hand.

_SHA1_ALGS = {
    "ec": bytes.fromhex("300906072a8648ce3d0401"),  # ecdsa-with-SHA1
    "rsa": bytes.fromhex("300d06092a864886f70d0101050500"),  # sha1WithRSAEncryption
}


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_items(data: bytes) -> list[bytes]:
    """Split DER content into its top-level TLVs (each returned whole)."""
    items, i = [], 0
    while i < len(data):
        start = i
        i += 1
        first = data[i]
        i += 1
        if first & 0x80:
            nlen = first & 0x7F
            length = int.from_bytes(data[i:i + nlen], "big")
            i += nlen
        else:
            length = first
        i += length
        if i > len(data):
            raise PkiError("malformed DER while re-signing certificate")
        items.append(data[start:i])
    return items


def _der_body(tlv: bytes) -> bytes:
    first = tlv[1]
    offset = 2 + (first & 0x7F if first & 0x80 else 0)
    return tlv[offset:]


def _resign_sha1(cert: x509.Certificate, issuer_key: PrivateKey) -> x509.Certificate:
    kind = "rsa" if isinstance(issuer_key, rsa.RSAPrivateKey) else "ec"
    alg = _SHA1_ALGS[kind]
    fields = _der_items(_der_body(cert.tbs_certificate_bytes))
    fields[2] = alg  # [0] version, serialNumber, signature AlgorithmIdentifier, ...
    tbs = _der_tlv(0x30, b"".join(fields))
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        sig = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    else:
        sig = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    der = _der_tlv(0x30, tbs + alg + _der_tlv(0x03, b"\x00" + sig))
    return x509.load_der_x509_certificate(der)
