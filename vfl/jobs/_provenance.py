"""Who ran a job and on what: party identities, data fingerprints and the code version.

These are the facts the audit trail and the model registry record about a job (issue 9):

* :class:`PartyIdentity` -- this party's Ed25519 signing key (it signs the audit log and the chain
  heads) and, where known, every party's public signing key and TLS certificate fingerprint.
  :func:`identity_from_federation` reads them from ``federation.toml``; without one,
  :func:`work_dir_key` keeps a per-work-dir audit key in ``WORK_DIR/audit.key`` (mode 0600).
* :func:`file_sha256` and :func:`ids_sha256` -- SHA-256 of an input file's bytes and of the
  PSI-aligned ids (``SHA-256(len(id_1) || id_1 || len(id_2) || id_2 ...)`` over the normalised ids
  in the agreed order, lengths as 4-byte big-endian), so two parties can compare what they
  trained on without revealing it.
* :func:`code_version` -- the package version and, in a git checkout, the commit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crypto.keys import SigningKey, VerifyKey

if TYPE_CHECKING:
    from protocols.config import FederationConfig

__all__ = [
    "PartyIdentity",
    "identity_from_federation",
    "work_dir_key",
    "file_sha256",
    "ids_sha256",
    "code_version",
]

AUDIT_KEY_FILE = "audit.key"


@dataclass(frozen=True)
class PartyIdentity:
    """This party's signing key and what it knows of every party's identity.

    ``verify_keys`` pins the peers' chain heads (and names their key fingerprints in the audit
    trail); ``certificates`` maps party -> SHA-256 fingerprint (hex) of its TLS certificate.
    """

    signing_key: SigningKey
    verify_keys: Mapping[str, VerifyKey] = field(default_factory=dict)
    certificates: Mapping[str, str] = field(default_factory=dict)

    def participant(self, name: str) -> dict[str, Any]:
        """``{signing_key_sha256, tls_cert_sha256}`` of one party (``None`` where unknown)."""
        key = self.verify_keys.get(name)
        return {
            "signing_key_sha256": None if key is None else key.fingerprint,
            "tls_cert_sha256": self.certificates.get(name),
        }

    def for_party(self, party: str) -> PartyIdentity:
        """The same identity, with ``party``'s own public key filled in."""
        keys = dict(self.verify_keys)
        keys.setdefault(party, self.signing_key.verify_key)
        return PartyIdentity(self.signing_key, keys, dict(self.certificates))


def _cert_fingerprint(path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def identity_from_federation(config: FederationConfig, party: str) -> PartyIdentity:
    """``party``'s identity from ``federation.toml``: its signing key, all public keys and certs."""
    certificates = {
        name: _cert_fingerprint(entry.tls_cert) for name, entry in sorted(config.parties.items())
    }
    return PartyIdentity(
        signing_key=config.signing_key(party),
        verify_keys=config.verify_keys(),
        certificates=certificates,
    )


def work_dir_key(work_dir: str | os.PathLike[str]) -> SigningKey:
    """The work dir's own audit key (``audit.key``, 0600), created on first use."""
    path = Path(work_dir) / AUDIT_KEY_FILE
    if path.is_file():
        return SigningKey.load(path)
    key = SigningKey.generate()
    key.save(path)
    return key


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ids_sha256(ids: Iterable[bytes]) -> str:
    """Hex ``SHA-256(len(id_1) || id_1 || ...)`` of normalised ids, in the given order."""
    digest = hashlib.sha256()
    for value in ids:
        digest.update(len(value).to_bytes(4, "big"))
        digest.update(value)
    return digest.hexdigest()


def _git_commit(start: Path) -> str | None:
    """The commit of the git checkout containing ``start``, read from ``.git`` (no subprocess)."""
    for folder in (start, *start.parents):
        git = folder / ".git"
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head[:12] or None
            ref = head[5:]
            loose = git / ref
            if loose.is_file():
                return loose.read_text().strip()[:12]
            packed = git / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha[:12]
        except OSError:
            return None
        return None
    return None


def code_version() -> str:
    """``vfl-engine`` package version, plus ``+g<commit>`` when running from a git checkout."""
    try:
        version = importlib.metadata.version("vfl-engine")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git_commit(Path(__file__).resolve().parent)
    return f"{version}+g{commit}" if commit else version
