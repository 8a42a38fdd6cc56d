"""Multi-party PSI (k >= 3) that reveals the common intersection and no pairwise sizes.

Design (docs/protocols/psi.md, "Multi-party"): full encodings on a ring, then zero-sharing over
garbled Bloom filters (Inbar, Omri, Pinkas, "Efficient scalable multiparty private
set-intersection via garbled Bloom filters", SCN 2018, semi-honest variant).

1. Hello to every peer (sizes, salt shares) and an ephemeral X25519 key for pairwise PRF keys.
2. Ring: parties sorted by name, ``next = p_{i+1}``. Each party blinds its own ids with a
   one-time scalar ``r_i`` (``[r_i] u(x)``, random order) and sends them to ``next``; every party
   multiplies each passing set by its key ``k_j`` and forwards it; the set comes back to its origin
   as ``[r_i prod_{j != i} k_j] u(x)``, and the origin replaces ``r_i`` by ``k_i``
   (:func:`psi._group.rekey`: a multiplication by ``k_i r_i^-1 mod l``), obtaining the full encoding
   ``F(x) = [prod_j k_j] u(x)``. Nobody but the origin ever sees ``F`` of the origin's ids.
3. Zero shares: ``S_i(e) = XOR_{j != i} PRF(k_ij, e)`` with ``k_ij`` agreed by X25519 between
   ``i`` and ``j``, so ``XOR_i S_i(e) = 0`` for every ``e``. Each feature party sends the leader a
   GBF mapping each of its ``F(x)`` to ``S_i(F(x))``.
4. The leader computes ``S_L(F(x)) XOR (XOR_i GBF_i[F(x)])`` for each own ``x``: zero iff ``x`` is
   in every set (else uniformly random: false match <= n_L 2^-8w). With reveal ``all`` it sends the
   members' truncated ``F`` tags, sorted, to every feature party.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from crypto.compute import ComputeBackend
from crypto.random import RandomSource
from protocols.channel import Channel
from psi import _gbf, _group
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
from psi.errors import PSIProtocolError, PSIUsageError

__all__ = ["run_multi_party"]

T_HELLO = "psi/hello"
T_AGREE = "psi/agree"
T_GBF = "psi/gbf"
T_MEMBERS = "psi/members"
INLINE_BELOW = 1 << 12


def _ring_topic(origin: str) -> str:
    return f"psi/ring/{origin}"


def _prf_key(secret: bytes, salt: bytes, a: str, b: str) -> bytes:
    """Pairwise PRF key = SHA-256("vfl-psi/zero-share" || salt || names || X25519 secret)."""
    lo, hi = sorted((a, b))
    h = hashlib.sha256(b"vfl-psi/zero-share/1" + salt)
    for name in (lo, hi):
        h.update(len(name).to_bytes(2, "big") + name.encode())
    h.update(secret)
    return h.digest()


def zero_shares(keys: Sequence[bytes], items: Sequence[bytes], width: int) -> np.ndarray:
    """``(n, width)``: ``S(e) = XOR_k BLAKE2b_k(e)`` over this party's pairwise keys."""
    out = np.zeros((len(items), width), dtype=np.uint8)
    for key in keys:
        raw = b"".join(hashlib.blake2b(e, key=key, digest_size=width).digest() for e in items)
        out ^= np.frombuffer(raw, dtype=np.uint8).reshape(len(items), width)
    return out


def run_multi_party(
    ids: NormalisedIds,
    *,
    channel: Channel,
    parties: tuple[str, ...],
    leader: str,
    reveal: Reveal,
    rng: RandomSource,
    pool: ComputeBackend,
    batch: int,
    timeout: float | None,
    progress: Progress | None = None,
    max_peer_ids: int = DEFAULT_MAX_PEER_IDS,
) -> PSIOutcome:
    """This party's side of k-party PSI on canonical, unique ``ids``."""
    if reveal.kind is RevealKind.SIZE:
        raise PSIUsageError("reveal='size' is supported for two parties only")
    if reveal.kind is RevealKind.PARTY and reveal.party != leader:
        raise PSIUsageError(
            f"with {len(parties)} parties only the leader can be the sole receiver; "
            f"make {reveal.party!r} the leader"
        )
    me = channel.party
    peers = [p for p in parties if p != me]
    n = len(ids)
    key = _group.scalar_from_seed(rng.random_bytes(_group.SEED_BYTES))
    one_time = _group.scalar_from_seed(rng.random_bytes(_group.SEED_BYTES))
    agree = X25519PrivateKey.from_private_bytes(rng.random_bytes(32))
    hello = Hello(
        version=PROTOCOL_VERSION,
        n=n,
        reveal=reveal.wire,
        parties=parties,
        salt_share=rng.random_bytes(32),
        batch=batch,
    )
    channel.broadcast(T_HELLO, hello, peers=peers)
    channel.broadcast(
        T_AGREE, {"leader": leader, "public": agree.public_key().public_bytes_raw()}, peers=peers
    )
    wait0 = timeout if timeout is not None else scaled_timeout(n)
    received = dict(channel.gather(T_HELLO, peers=peers, timeout=wait0))
    hellos = check_hellos(hello, received, parties, max_peer_ids=max_peer_ids)
    sizes = {p: h.n for p, h in hellos.items()} | {me: n}
    batches = {p: h.batch for p, h in hellos.items()} | {me: batch}
    wait = timeout if timeout is not None else scaled_timeout(sum(sizes.values()))
    prf_keys = []
    salt = session_salt({p: h.salt_share for p, h in hellos.items()} | {me: hello.salt_share})
    for peer, msg in channel.gather(T_AGREE, peers=peers, timeout=wait).items():
        if not isinstance(msg, dict) or msg.get("leader") != leader:
            raise PSIProtocolError(
                f"{peer} disagrees on the leader or sent a malformed key message"
            )
        public = msg.get("public")
        if not isinstance(public, bytes) or len(public) != 32:
            raise PSIProtocolError(f"{peer} sent a malformed X25519 public key")
        try:
            secret = agree.exchange(X25519PublicKey.from_public_bytes(public))
        except ValueError:
            raise PSIProtocolError(f"{peer} sent a low-order X25519 public key") from None
        prf_keys.append(_prf_key(secret, salt, me, peer))
    prefix = _group.hash_prefix(salt)
    inline = sum(sizes.values()) < INLINE_BELOW
    total = n + sum(sizes.values())
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    # 2. The ring.
    idx = parties.index(me)
    nxt, prv = parties[(idx + 1) % len(parties)], parties[(idx - 1) % len(parties)]
    perm = random_permutation(n, rng)
    own_jobs = ((one_time, prefix, ids.take(perm[s:e])) for s, e in batched(n, batch))
    for rnd, blob in enumerate(pool.imap(_group.hash_and_blind, own_jobs, inline=inline)):
        channel.send(nxt, _ring_topic(me), _as_points(blob), round=rnd)
        tick(len(blob) // 32)
    for hop in range(1, len(parties)):
        origin = parties[(idx - hop) % len(parties)]
        chunks = list(batched(sizes[origin], batches[origin]))
        jobs = _recv_points(channel, prv, _ring_topic(origin), chunks, wait, lambda b: (key, b))
        for rnd, blob in enumerate(pool.imap(_group.blind, jobs, inline=inline)):
            channel.send(nxt, _ring_topic(origin), _as_points(blob), round=rnd)
            tick(len(blob) // 32)
    full = np.empty((n, 32), dtype=np.uint8)
    chunks = list(batched(n, batch))
    jobs = _recv_points(channel, prv, _ring_topic(me), chunks, wait, lambda b: (key, one_time, b))
    for (s, e), blob in zip(chunks, pool.imap(_group.rekey, jobs, inline=inline), strict=True):
        full[perm[s:e]] = _as_points(blob)
        tick(e - s)
    encodings = [bytes(row) for row in full]

    # 3-4. Zero shares over garbled Bloom filters.
    width = _group.tag_bytes(sizes[leader])
    t = _group.tag_bytes(max(sizes.values()), max(sizes.values()))
    gbf_seed = hashlib.sha256(b"vfl-psi/gbf/1" + salt).digest()
    shares = zero_shares(prf_keys, encodings, width)
    tags = np.ascontiguousarray(full[:, :t])
    if me != leader:
        m = _gbf.gbf_rows(n)
        table = _gbf.build(_gbf.positions(encodings, m=m, seed=gbf_seed), shares, m=m, rng=rng)
        for rnd, (s, e) in enumerate(batched(m + 1, batch)):
            channel.send(leader, T_GBF, table[s:e], round=rnd)
        if not reveal.learns_members(me):
            return PSIOutcome(size=None, members=None, tag_bytes=t)
        got = channel.recv(leader, T_MEMBERS, timeout=wait)
        if not isinstance(got, np.ndarray) or got.dtype != np.uint8 or got.ndim != 2:
            raise PSIProtocolError("the leader sent malformed member tags")
        members_tags = check_chunk(got, rows=got.shape[0], width=t, what="member tags")
        hit = np.flatnonzero(tags_in(tags, members_tags))
        if hit.size != members_tags.shape[0]:
            raise PSIProtocolError("the leader announced members this party does not hold")
        order = np.argsort(as_void(tags[hit]), kind="stable")
        return PSIOutcome(size=int(hit.size), members=hit[order], tag_bytes=t)

    acc = shares
    for peer in peers:
        m = _gbf.gbf_rows(sizes[peer])
        table = np.empty((m + 1, width), dtype=np.uint8)
        for s, e in batched(m + 1, batches[peer]):
            part = channel.recv(peer, T_GBF, timeout=wait)
            table[s:e] = check_chunk(part, rows=e - s, width=width, what="garbled Bloom filter")
        acc = acc ^ _gbf.lookup(table, _gbf.positions(encodings, m=m, seed=gbf_seed))
    hit = np.flatnonzero(~acc.any(axis=1))
    order = np.argsort(as_void(tags[hit]), kind="stable")
    members = hit[order]
    if reveal.kind is RevealKind.ALL:
        channel.broadcast(T_MEMBERS, np.ascontiguousarray(tags[members]), peers=peers)
    return PSIOutcome(size=int(members.size), members=members, tag_bytes=t)


def _as_points(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8).reshape(-1, 32)


def _recv_points(
    channel: Channel,
    peer: str,
    topic: str,
    chunks: list[tuple[int, int]],
    wait: float,
    make: Callable[[bytes], tuple[bytes, ...]],
) -> Iterator[tuple[bytes, ...]]:
    for s, e in chunks:
        payload = channel.recv(peer, topic, timeout=wait)
        yield make(check_chunk(payload, rows=e - s, width=32, what="ring points").tobytes())
