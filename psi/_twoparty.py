"""Two-party ECDH-PSI (Meadows 1986; Huberman-Franklin-Hogg 1999; De Cristofaro-Gasti-Tsudik
2012 for the size-only variant) in ristretto255 (RFC 9496), written against a :class:`Channel`.

Party P holds ids ``A`` and a fresh scalar ``a``; the peer Q holds ``B`` and ``b``. With
``u(x)`` the salted hash into the group and ``T(.)`` the first ``t`` bytes::

    1. P <-> Q   Hello(n, reveal, salt share, batch)         salt = SHA-256(shares), t from n_P n_Q
    2. P  -> Q   X_P = [a] u(x)   for x in A, in a random order pi_P      (chunks, "psi/blinded")
       Q  -> P   X_Q = [b] u(y)   for y in B, in a random order pi_Q
    3. Q  -> P   T([b] X_P) in the received order (reveal to P or all),
                 or shuffled again by Q (size only); nothing if P learns nothing   ("psi/tags")
       P  -> Q   T([a] X_Q) likewise
    4. P         own tags T([ab] u(x)) (un-permuted), peer tags T([ab] u(y)) computed itself;
                 members = own ids whose tag is among the peer's tags; size = their count.

Each party does ``n_P + n_Q`` scalar multiplications. Messages are streamed in batches of
``batch`` items through a process pool, so memory holds the points and tags once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from crypto.compute import ComputeBackend
from crypto.random import RandomSource
from protocols.channel import Channel
from psi import _group
from psi._common import (
    DEFAULT_MAX_PEER_IDS,
    PROTOCOL_VERSION,
    Hello,
    Progress,
    PSIOutcome,
    Reveal,
    RevealKind,
    as_void,
    batched,
    check_chunk,
    check_hellos,
    random_permutation,
    scaled_timeout,
    session_salt,
    tags_in,
)
from psi._normalise import NormalisedIds

__all__ = ["run_two_party", "INLINE_BELOW"]

logger = logging.getLogger(__name__)

#: Below this many items in total the work runs inline: starting worker processes costs more.
INLINE_BELOW = 1 << 14

T_HELLO = "psi/hello"
T_BLINDED = "psi/blinded"
T_TAGS = "psi/tags"


def run_two_party(
    ids: NormalisedIds,
    *,
    channel: Channel,
    peer: str,
    reveal: Reveal,
    rng: RandomSource,
    pool: ComputeBackend,
    batch: int,
    timeout: float | None,
    progress: Progress | None = None,
    max_peer_ids: int = DEFAULT_MAX_PEER_IDS,
) -> PSIOutcome:
    """This party's side of two-party PSI on canonical, unique ``ids``."""
    me = channel.party
    parties = tuple(sorted((me, peer)))
    n = len(ids)
    scalar = _group.scalar_from_seed(rng.random_bytes(_group.SEED_BYTES))
    hello = Hello(
        version=PROTOCOL_VERSION,
        n=n,
        reveal=reveal.wire,
        parties=parties,
        salt_share=rng.random_bytes(32),
        batch=batch,
    )
    channel.send(peer, T_HELLO, hello)
    first_wait = timeout if timeout is not None else scaled_timeout(n)
    received = {peer: channel.recv(peer, T_HELLO, timeout=first_wait)}
    their = check_hellos(hello, received, parties, max_peer_ids=max_peer_ids)[peer]
    n_peer = their.n
    wait = timeout if timeout is not None else scaled_timeout(max(n, n_peer))
    prefix = _group.hash_prefix(session_salt({me: hello.salt_share, peer: their.salt_share}))
    t = _group.tag_bytes(n, n_peer)
    inline = n + n_peer < INLINE_BELOW
    i_learn = reveal.learns_size(me)
    peer_learns = reveal.learns_size(peer)
    shuffle_back = reveal.kind is RevealKind.SIZE
    total = n + n_peer
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    # 2. Blind our own ids in a random order and stream them to the peer.
    perm = random_permutation(n, rng)
    jobs = ((scalar, prefix, ids.take(perm[s:e])) for s, e in batched(n, batch))
    for rnd, blob in enumerate(pool.imap(_group.hash_and_blind, jobs, inline=inline)):
        chunk = np.frombuffer(blob, dtype=np.uint8).reshape(-1, _group.POINT_BYTES)
        channel.send(peer, T_BLINDED, chunk, round=rnd)
        tick(chunk.shape[0])
    logger.debug("%s: sent %d blinded ids to %s", me, n, peer)

    # 3. Blind the peer's points with our scalar; keep the tags, return them if the peer learns.
    peer_chunks = list(batched(n_peer, their.batch))

    def peer_jobs() -> Iterator[tuple[bytes, bytes, int]]:
        for s, e in peer_chunks:
            payload = channel.recv(peer, T_BLINDED, timeout=wait)
            chunk = check_chunk(payload, rows=e - s, width=_group.POINT_BYTES, what="blinded ids")
            yield scalar, chunk.tobytes(), t

    peer_tags = np.empty((n_peer, t), dtype=np.uint8)
    for rnd, ((s, e), blob) in enumerate(
        zip(peer_chunks, pool.imap(_group.blind_truncate, peer_jobs(), inline=inline), strict=True)
    ):
        peer_tags[s:e] = np.frombuffer(blob, dtype=np.uint8).reshape(e - s, t)
        if peer_learns and not shuffle_back:
            channel.send(peer, T_TAGS, peer_tags[s:e], round=rnd)
        tick(e - s)
    if peer_learns and shuffle_back:
        shuffled = peer_tags[random_permutation(n_peer, rng)]
        for rnd, (s, e) in enumerate(peer_chunks):
            channel.send(peer, T_TAGS, shuffled[s:e], round=rnd)
        del shuffled

    if not i_learn:
        return PSIOutcome(size=None, members=None, tag_bytes=t)

    # 4. Receive our own tags (in our permuted order, or shuffled in size-only mode) and compare.
    own_tags = np.empty((n, t), dtype=np.uint8)
    for s, e in batched(n, batch):
        payload = channel.recv(peer, T_TAGS, timeout=wait)
        own_tags[s:e] = check_chunk(payload, rows=e - s, width=t, what="returned tags")
    in_peer = tags_in(own_tags, peer_tags)
    del peer_tags
    size = int(np.count_nonzero(in_peer))
    if shuffle_back:
        return PSIOutcome(size=size, members=None, tag_bytes=t)
    # own_tags[j] belongs to ids[perm[j]]: order the members by their tag, which every
    # receiving party computes identically, so all parties list the members in one order.
    hit = np.flatnonzero(in_peer)
    order = np.argsort(as_void(own_tags[hit]), kind="stable")
    return PSIOutcome(size=size, members=perm[hit[order]], tag_bytes=t)
