"""The audit record, its canonical encoding, the hash chain and signed chain heads.

Record hash (one link of the chain)::

    h_0 = 32 zero bytes
    h_i = SHA-256(DOMAIN || h_{i-1} || canonical(record_i))

where ``canonical(record_i)`` is the canonical JSON (:mod:`._canonical`) of the record's fields
``party, seq, time, actor, event, details, payload_hash``. Each record carries an Ed25519
signature (RFC 8032) by the party's audit key over exactly the hash pre-image
``DOMAIN || h_{i-1} || canonical(record_i)``, so neither the content nor the position in the chain
can change without the key. A chain head ``(party, job_id, seq, hash, time)`` is signed the same
way under ``HEAD_DOMAIN`` and handed to the peers, who keep it: a log cut back to before a head a
peer holds is detectable (truncation), which no single party's chain can show on its own.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crypto.errors import CryptoError
from crypto.keys import SigningKey, VerifyKey
from vfl.governance._canonical import canonical_json
from vfl.governance._errors import AuditError

__all__ = [
    "DOMAIN",
    "HEAD_DOMAIN",
    "GENESIS",
    "AuditRecord",
    "SignedHead",
    "record_preimage",
    "chain_hash",
]

DOMAIN = b"vfl/audit/record/v1\x00"
HEAD_DOMAIN = b"vfl/audit/head/v1\x00"
GENESIS = bytes(32)


def record_preimage(
    *,
    prev_hash: bytes,
    party: str,
    seq: int,
    time: str,
    actor: str,
    event: str,
    details: Mapping[str, Any],
    payload_hash: str | None,
) -> bytes:
    """``DOMAIN || h_{i-1} || canonical(record_i)`` (module docstring)."""
    body = {
        "party": party,
        "seq": seq,
        "time": time,
        "actor": actor,
        "event": event,
        "details": dict(details),
        "payload_hash": payload_hash,
    }
    return DOMAIN + bytes(prev_hash) + canonical_json(body)


def chain_hash(preimage: bytes) -> bytes:
    """``SHA-256(preimage)``: the record's link in the chain."""
    return hashlib.sha256(preimage).digest()


@dataclass(frozen=True)
class AuditRecord:
    """One row of the chain as stored (``details`` already decoded from canonical JSON)."""

    seq: int
    time: str
    actor: str
    event: str
    details: Mapping[str, Any]
    payload_hash: str | None
    prev_hash: bytes
    hash: bytes
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (hashes hex, signature base64)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "event": self.event,
            "details": dict(self.details),
            "payload_hash": self.payload_hash,
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


@dataclass(frozen=True)
class SignedHead:
    """A party's signed statement "my log for job ``job_id`` had ``seq`` records ending in ``hash``"."""

    party: str
    job_id: str
    seq: int
    hash: str
    time: str
    public_key: str
    signature: str

    @staticmethod
    def _message(
        *, party: str, job_id: str, seq: int, hash: str, time: str, public_key: str
    ) -> bytes:
        body = {
            "party": party,
            "job_id": job_id,
            "seq": seq,
            "hash": hash,
            "time": time,
            "public_key": public_key,
        }
        return HEAD_DOMAIN + canonical_json(body)

    @classmethod
    def sign(
        cls, key: SigningKey, *, party: str, job_id: str, seq: int, hash: str, time: str
    ) -> SignedHead:
        """Sign a head with the party's audit key."""
        public_key = key.verify_key.to_base64()
        message = cls._message(
            party=party, job_id=job_id, seq=seq, hash=hash, time=time, public_key=public_key
        )
        signature = base64.b64encode(key.sign(message)).decode("ascii")
        return cls(party, job_id, seq, hash, time, public_key, signature)

    def verify(self, key: VerifyKey | None = None) -> None:
        """Check the signature (against ``key`` when given, else the embedded public key)."""
        try:
            embedded = VerifyKey.from_base64(self.public_key)
            if key is not None and key != embedded:
                raise AuditError(f"head of {self.party} for job {self.job_id} names another key")
            message = self._message(
                party=self.party,
                job_id=self.job_id,
                seq=self.seq,
                hash=self.hash,
                time=self.time,
                public_key=self.public_key,
            )
            embedded.verify(base64.b64decode(self.signature, validate=True), message)
        except (CryptoError, ValueError):
            raise AuditError(
                f"signature of the head of {self.party} for job {self.job_id} does not verify"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "job_id": self.job_id,
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedHead:
        """Parse a head received from a peer or read from a heads file; names a bad field."""
        if not isinstance(data, Mapping):
            raise AuditError("a signed head must be a JSON object")
        fields: dict[str, Any] = {}
        for name, kind in (
            ("party", str),
            ("job_id", str),
            ("seq", int),
            ("hash", str),
            ("time", str),
            ("public_key", str),
            ("signature", str),
        ):
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise AuditError(f"signed head field {name!r} is missing or not a {kind.__name__}")
            fields[name] = value
        return cls(**fields)
