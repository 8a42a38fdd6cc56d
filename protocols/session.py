"""A fresh session id per run, agreed by the parties before any data moves.

A channel starts in its job's *bootstrap* session (the id it was opened with, ``""`` by
default). :func:`agree_session` has every party send 16 random bytes to every other on
:data:`SESSION_TOPIC`; the run's session id is

    ``SHA-256("vfl/session/v1" | for each party in name order: u16 len | name | contribution)``

(first 16 bytes, hex), so no party alone chooses it and a restarted process never reuses one.
The channel then switches to it (:meth:`~protocols.channel.Channel.switch_session`): every
envelope after that carries and is verified against it, and once a party is in its run
session, an envelope of any other session of the job -- the previous run's, replayed or sent
by a stale process -- is refused with :class:`~protocols.errors.ForeignJob` naming both sessions.

A contribution replayed into the bootstrap session (its envelopes carry no run id yet) can only
make the parties compute different ids: their next messages are then refused as foreign, a
denial of service, never a previous run's data accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from crypto.random import RandomSource, resolve
from protocols.channel import Channel
from protocols.errors import RemoteProtocolError

__all__ = ["SESSION_TOPIC", "CONTRIBUTION_BYTES", "session_id_of", "agree_session"]

SESSION_TOPIC = "_vfl/session"
CONTRIBUTION_BYTES = 16


def session_id_of(contributions: dict[str, bytes]) -> str:
    """The session id from every party's contribution (see the module doc)."""
    h = hashlib.sha256(b"vfl/session/v1")
    for name in sorted(contributions):
        raw = name.encode("utf-8")
        h.update(len(raw).to_bytes(2, "big") + raw + contributions[name])
    return h.digest()[:16].hex()


def agree_session(
    channel: Channel,
    peers: Iterable[str] | None = None,
    *,
    timeout: float | None = None,
    rng: RandomSource | None = None,
) -> str:
    """Agree on this run's session id with ``peers`` (default: all) and switch ``channel`` to it;
    returns the id. Every one of ``peers`` must call it too, with the same set of parties."""
    names = sorted(channel.peers if peers is None else peers)
    mine = resolve(rng).random_bytes(CONTRIBUTION_BYTES)
    channel.broadcast(SESSION_TOPIC, mine, peers=names)
    got = {channel.party: mine}
    for peer in names:
        theirs = channel.recv(peer, SESSION_TOPIC, timeout=timeout)
        if not isinstance(theirs, bytes) or len(theirs) != CONTRIBUTION_BYTES:
            raise RemoteProtocolError(
                f"{peer} sent a malformed session contribution (want {CONTRIBUTION_BYTES} bytes)"
            )
        got[peer] = theirs
    session = session_id_of(got)
    channel.switch_session(session)
    return session
