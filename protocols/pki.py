"""A development PKI for a federation: one CA, a TLS certificate and an Ed25519 key per party.

:func:`init_federation` writes everything ``vfl certs init`` promises::

    DIR/ca.pem  ca.key                      the federation CA (ECDSA P-256)
    DIR/<party>/tls.pem  tls.key           the party's TLS certificate and key
    DIR/<party>/signing.key  signing.pub.pem   the party's Ed25519 message-signing key
    DIR/federation.toml                     ready to use with ``vfl serve``

Party certificates are ECDSA P-256 with CN = the party name and SANs ``DNS:<party>``,
``DNS:localhost``, ``IP:127.0.0.1`` and the optional ``--host`` names; clients verify a server
as the party they meant by its ``DNS:<party>`` SAN, servers identify a client by its CN. ECDSA
(not RSA) keys are part of the TLS 1.3-only policy (see :mod:`protocols.grpc.tls`). Private keys
are written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypto.keys import SigningKey
from protocols.errors import ConfigError

__all__ = ["PARTY_NAME", "CertifiedKey", "make_ca", "issue_certificate", "init_federation"]

PARTY_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_VALID_DAYS = 365


@dataclass(frozen=True)
class CertifiedKey:
    """A private key and its certificate, as PEM bytes."""

    key_pem: bytes
    cert_pem: bytes


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(name: str = "vfl federation dev CA", *, days: int = _VALID_DAYS) -> CertifiedKey:
    """A self-signed ECDSA P-256 CA certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(_pem_key(key), cert.public_bytes(serialization.Encoding.PEM))


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_certificate(
    ca: CertifiedKey, party: str, *, hosts: Sequence[str] = (), days: int = _VALID_DAYS
) -> CertifiedKey:
    """A TLS certificate for ``party`` (server and client auth) signed by ``ca``."""
    if not PARTY_NAME.match(party):
        raise ConfigError(f"party name {party!r} must match {PARTY_NAME.pattern}")
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError("the CA key must be an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys([party, "localhost", "127.0.0.1", *hosts]))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertifiedKey(_pem_key(key), cert.public_bytes(serialization.Encoding.PEM))


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_federation(
    parties: Sequence[str],
    out: str | os.PathLike[str],
    *,
    hosts: Sequence[str] = (),
    addresses: Mapping[str, str] | None = None,
    base_port: int = 50051,
) -> Path:
    """Write a CA, per-party TLS certificates and signing keys, and ``federation.toml``.

    ``addresses`` maps a party to ``host:port``; the default is ``127.0.0.1:<base_port + i>``.
    Every certificate names its party (``DNS:<party>``, what peers check) and ``hosts``; a party's
    own address host (an IP SAN for an IP address) goes into that party's certificate only, so
    one party's certificate never vouches for another's host. A wildcard listening address
    (``0.0.0.0``, ``::``) names no host and is left out. Returns the path of ``federation.toml``.
    """
    names = list(parties)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError("--parties needs at least two distinct party names")
    for name in names:
        if not PARTY_NAME.match(name):
            raise ConfigError(f"party name {name!r} must match {PARTY_NAME.pattern}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    _write(root / "ca.pem", ca.cert_pem, private=False)
    _write(root / "ca.key", ca.key_pem, private=True)
    lines = ["# Generated by `vfl certs init`: a development federation.", "", "[federation]"]
    lines += ['ca = "ca.pem"', ""]
    for i, name in enumerate(names):
        address = (addresses or {}).get(name, f"127.0.0.1:{base_port + i}")
        own_host = address.rpartition(":")[0].strip("[]")
        own = [own_host] if own_host and own_host not in ("0.0.0.0", "::") else []
        tls = issue_certificate(ca, name, hosts=list(dict.fromkeys([*hosts, *own])))
        _write(root / name / "tls.pem", tls.cert_pem, private=False)
        _write(root / name / "tls.key", tls.key_pem, private=True)
        signing = SigningKey.generate()
        signing.save(root / name / "signing.key")
        signing.verify_key.save(root / name / "signing.pub.pem")
        lines += [
            f"[parties.{name}]",
            f"address = {_toml_str(address)}",
            f'tls_cert = "{name}/tls.pem"',
            f'tls_key = "{name}/tls.key"            # private: only {name} keeps it',
            f'signing_public_key = "{name}/signing.pub.pem"',
            f'signing_key = "{name}/signing.key"    # private: only {name} keeps it',
            "",
        ]
    path = root / "federation.toml"
    path.write_text("\n".join(lines))
    return path
