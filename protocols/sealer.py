"""One party's outgoing side of a session: envelope sealing and signed statements.

Both transports (:mod:`protocols.memory`, :mod:`protocols.grpc`) seal through one
:class:`Sealer`: it numbers envelopes per receiver (``seq`` strictly increasing, so the
receiver's :class:`~protocols.verify.Verifier` refuses replays) and signs them with the party's
federation Ed25519 key, binding job and session id.

A protocol that must authenticate data relayed by a third party (secure aggregation: keys a
client advertises reach the other clients through the aggregator) asks its channel to
:meth:`~protocols.channel.Channel.attest` a statement. The signed bytes are

    ``b"VFLS" | u8 version | str job_id | str session_id | str signer | u32 length | statement``

(``str`` as in :mod:`protocols.envelope`), so a statement signature can never be taken for an
envelope signature (whose bytes start with ``b"VFLE"``), for another party's statement, or for
one made in another job or another run of the same job.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Mapping

from crypto.errors import InvalidSignature
from crypto.keys import SigningKey, VerifyKey
from protocols.envelope import MAX_FIELD_BYTES, Envelope, seal
from protocols.errors import LocalProtocolError

__all__ = ["Sealer", "statement_bytes", "verify_statement"]

_STATEMENT_MAGIC = b"VFLS"
_STATEMENT_VERSION = 1
_MAX_STATEMENT = 1 << 20


def statement_bytes(*, job_id: str, session_id: str, signer: str, statement: bytes) -> bytes:
    """The canonical bytes a statement signature covers (see the module doc)."""
    out = bytearray(_STATEMENT_MAGIC)
    out.append(_STATEMENT_VERSION)
    for name, value in (("job_id", job_id), ("session_id", session_id), ("signer", signer)):
        raw = value.encode("utf-8")
        if len(raw) > MAX_FIELD_BYTES:
            raise LocalProtocolError(f"statement field {name} is longer than {MAX_FIELD_BYTES}")
        out += struct.pack(">H", len(raw)) + raw
    if len(statement) > _MAX_STATEMENT:
        raise LocalProtocolError(f"a signed statement is at most {_MAX_STATEMENT} bytes")
    out += struct.pack(">I", len(statement)) + bytes(statement)
    return bytes(out)


def verify_statement(
    keys: Mapping[str, VerifyKey],
    *,
    job_id: str,
    session_id: str,
    signer: str,
    statement: bytes,
    signature: bytes,
) -> bool:
    """Whether ``signature`` is ``signer``'s (per the federation's ``keys``) over ``statement``
    in this job and session."""
    key = keys.get(signer)
    if key is None or not isinstance(signature, bytes) or not isinstance(statement, bytes):
        return False
    try:
        data = statement_bytes(
            job_id=job_id, session_id=session_id, signer=signer, statement=statement
        )
        key.verify(signature, data)
    except (InvalidSignature, LocalProtocolError):
        return False
    return True


class Sealer:
    """Seals one party's envelopes for one (job, session): numbering and signing.

    ``first_seq`` is the first sequence number towards every peer (memory: 1; gRPC: the wall
    clock in nanoseconds, so a restarted process keeps numbering above its earlier run's).
    Thread-safe: each peer's counter is taken under a lock; callers that must keep send order
    per peer hold their own per-peer lock around :meth:`seal` and the send.
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        party: str,
        job_id: str,
        session_id: str,
        peers: Iterable[str],
        first_seq: int = 1,
    ) -> None:
        self._key = key
        self.party = party
        self.job_id = job_id
        self.session_id = session_id
        self._lock = threading.Lock()
        self._next = dict.fromkeys(peers, first_seq)

    def seal(
        self,
        peer: str,
        topic: str,
        round: int,
        *,
        codec: str,
        parts: Iterable[bytes | bytearray | memoryview],
    ) -> Envelope:
        """The signed envelope of the next message to ``peer``."""
        with self._lock:
            if peer not in self._next:
                raise LocalProtocolError(f"{peer!r} is not a peer of {self.party!r}")
            seq = self._next[peer]
            self._next[peer] = seq + 1
        return seal(
            key=self._key,
            job_id=self.job_id,
            session_id=self.session_id,
            sender=self.party,
            receiver=peer,
            topic=topic,
            round=round,
            seq=seq,
            codec=codec,
            parts=parts,
        )

    def attest(self, statement: bytes) -> bytes:
        """This party's signature over ``statement`` in this job and session."""
        return self._key.sign(
            statement_bytes(
                job_id=self.job_id, session_id=self.session_id, signer=self.party,
                statement=statement,
            )
        )  # fmt: skip

    def check(self, keys: Mapping[str, VerifyKey], signer: str, statement: bytes,
              signature: bytes) -> bool:  # fmt: skip
        """Whether ``signature`` is ``signer``'s :meth:`attest` of ``statement`` in this job
        and session (``keys``: the federation's verify keys)."""
        return verify_statement(
            keys, job_id=self.job_id, session_id=self.session_id, signer=signer,
            statement=statement, signature=signature,
        )  # fmt: skip
