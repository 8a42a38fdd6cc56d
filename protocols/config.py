"""``federation.toml``: who the parties are, where they listen, and which keys they use.

::

    [federation]
    ca = "ca.pem"                          # the federation CA certificate (PEM)

    [parties.bank]
    address = "127.0.0.1:50051"            # host:port of the bank's node
    tls_cert = "bank/tls.pem"              # the bank's TLS certificate, issued by the CA
    tls_key = "bank/tls.key"               # private: needed only by the bank itself
    signing_public_key = "bank/signing.pub.pem"   # PEM file, or the raw key in base64
    signing_key = "bank/signing.key"       # private: needed only by the bank itself

Relative paths are relative to the file's directory. Unknown keys, wrong types and missing files
raise :class:`~protocols.errors.ConfigError` naming the key (``parties.bank.tls_cert``).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from crypto.keys import SigningKey, VerifyKey
from protocols.errors import ConfigError
from protocols.pki import PARTY_NAME

__all__ = ["PartyConfig", "FederationConfig", "load_federation"]

_PARTY_KEYS = {"address", "tls_cert", "tls_key", "signing_public_key", "signing_key"}
_REQUIRED = {"address", "tls_cert", "signing_public_key"}


@dataclass(frozen=True)
class PartyConfig:
    """One party's entry. ``tls_key``/``signing_key`` are set only where the file lists them."""

    name: str
    address: str
    tls_cert: Path
    signing_public_key: VerifyKey
    tls_key: Path | None = None
    signing_key_path: Path | None = None


@dataclass(frozen=True)
class FederationConfig:
    """The whole federation as read from ``federation.toml``."""

    path: Path
    ca: Path
    parties: Mapping[str, PartyConfig]

    def party(self, name: str) -> PartyConfig:
        try:
            return self.parties[name]
        except KeyError:
            raise ConfigError(f"party {name!r} is not in {self.path} (parties.{name})") from None

    def verify_keys(self) -> dict[str, VerifyKey]:
        """``{party: Ed25519 public key}`` for every party."""
        return {name: p.signing_public_key for name, p in self.parties.items()}

    def signing_key(self, name: str) -> SigningKey:
        """Load ``name``'s private signing key (refused if group/others can read it)."""
        path = self.party(name).signing_key_path
        if path is None:
            raise ConfigError(f"parties.{name}.signing_key is needed to run {name}'s node")
        try:
            return SigningKey.load(path)
        except (CryptoError, OSError) as exc:
            raise ConfigError(f"parties.{name}.signing_key: {exc}") from exc

    def tls_identity(self, name: str) -> tuple[bytes, bytes]:
        """``(private key PEM, certificate PEM)`` of ``name``'s TLS identity."""
        party = self.party(name)
        if party.tls_key is None:
            raise ConfigError(f"parties.{name}.tls_key is needed to run {name}'s node")
        mode = stat.S_IMODE(party.tls_key.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"parties.{name}.tls_key: {party.tls_key} has permissions {mode:o}; chmod 600 it"
            )
        return _read(party.tls_key, f"parties.{name}.tls_key"), _read(
            party.tls_cert, f"parties.{name}.tls_cert"
        )

    def ca_pem(self) -> bytes:
        return _read(self.ca, "federation.ca")


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from exc


def _str(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key} must be a non-empty string")
    return value


def _file(base: Path, table: Mapping[str, Any], key: str, where: str) -> Path:
    path = Path(os.path.expanduser(_str(table, key, where)))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ConfigError(f"{where}.{key}: file {path} does not exist")
    return path


def _verify_key(base: Path, table: Mapping[str, Any], where: str) -> VerifyKey:
    text = _str(table, "signing_public_key", where)
    try:
        if text.endswith(".pem"):
            return VerifyKey.load(_file(base, table, "signing_public_key", where))
        return VerifyKey.from_base64(text)
    except CryptoError as exc:
        raise ConfigError(f"{where}.signing_public_key: {exc}") from exc


def _address(value: str, where: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}.address must be host:port, got {value!r}")
    return value


def load_federation(path: str | os.PathLike[str]) -> FederationConfig:
    """Read and validate ``federation.toml``."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read federation file {file}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from exc
    base = file.resolve().parent
    unknown = set(data) - {"federation", "parties"}
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r} in {file}")
    federation = data.get("federation")
    if not isinstance(federation, dict):
        raise ConfigError("federation must be a table with the key ca")
    extra = set(federation) - {"ca"}
    if extra:
        raise ConfigError(f"unknown key federation.{sorted(extra)[0]}")
    ca = _file(base, federation, "ca", "federation")
    parties_table = data.get("parties")
    if not isinstance(parties_table, dict) or len(parties_table) < 2:
        raise ConfigError("parties must be a table with at least two parties")
    parties: dict[str, PartyConfig] = {}
    for name, table in parties_table.items():
        where = f"parties.{name}"
        if not PARTY_NAME.match(name):
            raise ConfigError(f"{where}: party names must match {PARTY_NAME.pattern}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        extra = set(table) - _PARTY_KEYS
        if extra:
            raise ConfigError(f"unknown key {where}.{sorted(extra)[0]}")
        missing = _REQUIRED - set(table)
        if missing:
            raise ConfigError(f"{where}.{sorted(missing)[0]} is missing")
        parties[name] = PartyConfig(
            name=name,
            address=_address(_str(table, "address", where), where),
            tls_cert=_file(base, table, "tls_cert", where),
            signing_public_key=_verify_key(base, table, where),
            tls_key=_file(base, table, "tls_key", where) if "tls_key" in table else None,
            signing_key_path=(
                _file(base, table, "signing_key", where) if "signing_key" in table else None
            ),
        )
    return FederationConfig(path=file, ca=ca, parties=parties)
