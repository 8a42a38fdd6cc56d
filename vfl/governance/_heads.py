"""End-of-job exchange of signed chain heads over a :class:`protocols.channel.Channel`.

Each party signs its current head ``(party, job_id, seq, hash, time)``, sends it to every peer on
topic ``audit/head`` and stores each peer's verified head in its own log (append-only table plus
an ``audit.peer_head`` chain record). Afterwards no party can cut its log back to before the
exchange without the peers' copies showing it (:func:`vfl.governance.verify` with
``peer_heads``). The channel already authenticates the sender; the head additionally carries the
audit public key, which must match ``expected_keys[peer]`` when the caller pins it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from crypto.keys import VerifyKey
from protocols.channel import Channel
from vfl.governance._audit import AuditLog
from vfl.governance._errors import AuditError
from vfl.governance._records import SignedHead

__all__ = ["exchange_heads", "HEAD_TOPIC"]

HEAD_TOPIC = "audit/head"


def exchange_heads(
    channel: Channel,
    audit_log: AuditLog,
    *,
    job_id: str,
    expected_keys: Mapping[str, VerifyKey] | None = None,
    timeout: float | None = None,
    peers: Sequence[str] | None = None,
) -> dict[str, SignedHead]:
    """Send this party's signed head to every peer and store theirs; return the peers' heads.

    This party's head is taken *before* the peers' heads are recorded, so it covers the whole job.
    A head that is for another job, claims another party, fails its signature or names a key other
    than ``expected_keys[peer]`` raises :class:`AuditError` naming the peer. ``peers`` limits the
    exchange to a job's parties when the channel reaches more of the federation.
    """
    if audit_log.party != channel.party:
        raise AuditError(
            f"audit log of {audit_log.party!r} used on the channel of {channel.party!r}"
        )
    targets = sorted(channel.peers if peers is None else peers)
    own = audit_log.head(job_id=job_id)
    channel.broadcast(HEAD_TOPIC, own.to_dict(), peers=targets)
    received: dict[str, SignedHead] = {}
    for peer in targets:
        head = SignedHead.from_dict(channel.recv(peer, HEAD_TOPIC, timeout=timeout))
        if head.party != peer:
            raise AuditError(f"peer {peer} sent a head claiming to be {head.party!r}")
        if head.job_id != job_id:
            raise AuditError(f"peer {peer} sent a head for job {head.job_id!r}, not {job_id!r}")
        pinned = None if expected_keys is None else expected_keys.get(peer)
        if expected_keys is not None and pinned is None:
            raise AuditError(f"no pinned audit key for peer {peer}")
        head.verify(pinned)
        received[peer] = head
    for peer in sorted(received):
        audit_log.store_peer_head(received[peer])
    return received
