"""Ed25519 signing keys and X25519 key agreement, with safe key files.

Signatures are Ed25519 (RFC 8032, section 5.1): deterministic, 64 bytes, over the exact message
bytes; a verification failure raises the opaque :class:`crypto.errors.InvalidSignature`. Key
agreement is X25519 (RFC 7748, section 5) followed by HKDF-SHA256 (RFC 5869) with an ``info``
label, so a raw Diffie-Hellman output is never used as a key directly::

    key = HKDF-SHA256(ikm = X25519(a, B), salt, info, length)

Keys are generated from an injected :class:`crypto.random.RandomSource` (32 random bytes are the
private scalar seed), so tests can make deterministic keys with ``SeededRandom``; the default is
the OS CSPRNG. Private key files are PKCS#8 PEM written with mode 0600; loading a private key file
that group or others can read is refused (as OpenSSH does) unless explicitly allowed, which warns.

The fingerprint of a public key is the hex SHA-256 of its raw 32 bytes.

>>> from crypto.random import SeededRandom
>>> key = SigningKey.generate(rng=SeededRandom(1))
>>> key.verify_key.verify(key.sign(b"hello"), b"hello")
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import warnings
from pathlib import Path

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import CryptoUsageError, InvalidKey, InvalidSignature
from crypto.random import RandomSource, resolve

__all__ = ["SigningKey", "VerifyKey", "AgreementKey", "fingerprint", "KEY_FILE_MODE"]

KEY_FILE_MODE = 0o600
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw


def fingerprint(raw_public_key: bytes) -> str:
    """Hex SHA-256 of a raw public key: ``sha256(raw).hexdigest()``."""
    return hashlib.sha256(raw_public_key).hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600), also when it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
    finally:
        os.close(fd)


def _read_private(path: Path, *, allow_insecure_permissions: bool) -> bytes:
    """Read a private key file, refusing one that group or others may read."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        message = f"private key file {path} has permissions {mode:o}; expected 600"
        if not allow_insecure_permissions:
            raise CryptoUsageError(message + " (chmod 600 it)")
        warnings.warn(message, stacklevel=3)
    return path.read_bytes()


class VerifyKey:
    """An Ed25519 public key: verifies signatures; safe to publish."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(_RAW, _RAW_PUB)

    @classmethod
    def from_bytes(cls, raw: bytes) -> VerifyKey:
        """Load a raw 32-byte Ed25519 public key."""
        if len(raw) != 32:
            raise InvalidKey(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
        try:
            return cls(Ed25519PublicKey.from_public_bytes(bytes(raw)))
        except ValueError as exc:
            raise InvalidKey("malformed Ed25519 public key") from exc

    @classmethod
    def from_base64(cls, text: str) -> VerifyKey:
        """Load a raw public key given as standard base64 (as in ``federation.toml``)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError as exc:
            raise InvalidKey("Ed25519 public key is not valid base64") from exc
        return cls.from_bytes(raw)

    @classmethod
    def from_pem(cls, data: bytes) -> VerifyKey:
        """Load a SubjectPublicKeyInfo PEM public key."""
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise InvalidKey("malformed public key PEM") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidKey("public key PEM is not an Ed25519 key")
        return cls(key)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VerifyKey:
        """Load a public key PEM file."""
        return cls.from_pem(Path(path).read_bytes())

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._raw

    def to_base64(self) -> str:
        """The raw public key as standard base64."""
        return base64.b64encode(self._raw).decode("ascii")

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the public key PEM (world-readable is fine for a public key)."""
        Path(path).write_bytes(self.to_pem())

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the raw public key."""
        return fingerprint(self._raw)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature over ``message``; raise ``InvalidSignature`` if it fails."""
        if len(signature) != 64:
            raise InvalidSignature("signature does not verify")
        try:
            self._key.verify(bytes(signature), bytes(message))
        except _CryptographyInvalidSignature:
            raise InvalidSignature("signature does not verify") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"VerifyKey({self.fingerprint[:16]})"


class SigningKey:
    """An Ed25519 private key. Never serialised unless :meth:`save` / :meth:`to_pem` is called."""

    __slots__ = ("_key", "_verify_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._verify_key = VerifyKey(key.public_key())

    @classmethod
    def generate(cls, rng: RandomSource | None = None) -> SigningKey:
        """A new key whose 32-byte seed comes from ``rng`` (default: the OS CSPRNG)."""
        seed = resolve(rng).random_bytes(32)
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidKey("malformed or encrypted private key PEM") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidKey("private key PEM is not an Ed25519 key")
        return cls(key)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, allow_insecure_permissions: bool = False
    ) -> SigningKey:
        """Load a private key file; refuse it if group/others can read it (see module doc)."""
        return cls.from_pem(
            _read_private(Path(path), allow_insecure_permissions=allow_insecure_permissions)
        )

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM. Handle with care: this is the secret key."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private key PEM with mode 0600."""
        _write_private(Path(path), self.to_pem())

    @property
    def verify_key(self) -> VerifyKey:
        """The matching public key."""
        return self._verify_key

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the public key."""
        return self._verify_key.fingerprint

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (RFC 8032, deterministic)."""
        return self._key.sign(bytes(message))

    def __repr__(self) -> str:
        return f"SigningKey(public={self.fingerprint[:16]})"


class AgreementKey:
    """An X25519 private key for Diffie-Hellman key agreement, with HKDF-SHA256 derivation."""

    __slots__ = ("_key",)

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls, rng: RandomSource | None = None) -> AgreementKey:
        """A new key from 32 bytes of ``rng`` (clamped by X25519 itself, RFC 7748 section 5)."""
        return cls(X25519PrivateKey.from_private_bytes(resolve(rng).random_bytes(32)))

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key to send to the peer."""
        return self._key.public_key().public_bytes(_RAW, _RAW_PUB)

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the raw public key."""
        return fingerprint(self.public_bytes())

    def exchange(
        self,
        peer_public: bytes,
        *,
        info: bytes,
        length: int = 32,
        salt: bytes | None = None,
    ) -> bytes:
        """``HKDF-SHA256(X25519(self, peer), salt, info, length)``.

        ``info`` labels the purpose (e.g. ``b"vfl/mask/v1"``) so keys for different uses differ.
        A low-order peer point (all-zero shared secret) raises :class:`InvalidKey`.
        """
        if not info:
            raise CryptoUsageError("exchange needs a non-empty info label")
        if not 1 <= length <= 255 * 32:
            raise CryptoUsageError(f"HKDF length must be in [1, {255 * 32}], got {length}")
        if len(peer_public) != 32:
            raise InvalidKey(f"X25519 public key must be 32 bytes, got {len(peer_public)}")
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(bytes(peer_public)))
        except ValueError as exc:
            raise InvalidKey("X25519 peer key is invalid (low-order point)") from exc
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(shared)

    def __repr__(self) -> str:
        return f"AgreementKey(public={self.fingerprint[:16]})"
