"""Pieces shared by the two-party and multi-party protocols: reveal modes, wire messages,
permutations, tag comparison, chunk checks and input-scaled timeouts."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from crypto.random import RandomSource
from protocols.messages import message_type
from psi.errors import PSIProtocolError, PSIUsageError

__all__ = [
    "PROTOCOL_VERSION",
    "DEFAULT_BATCH",
    "DEFAULT_MAX_PEER_IDS",
    "Progress",
    "RevealKind",
    "Reveal",
    "Hello",
    "PSIOutcome",
    "scaled_timeout",
    "random_permutation",
    "as_void",
    "tags_in",
    "check_chunk",
    "batched",
    "session_salt",
    "check_hellos",
]

PROTOCOL_VERSION = "vfl-psi/2"
#: Items per batch: one process-pool task (~1 s of work) and one message (1 MiB of points).
DEFAULT_BATCH = 1 << 15

#: Largest set size a peer may announce in its :class:`Hello` (it sizes this party's buffers:
#: 200M ids is about 2.2 GB of tags at 11 bytes each). Configurable per call.
DEFAULT_MAX_PEER_IDS = 200_000_000

#: ``progress(done, total)``: items processed so far by this party's scalar multiplications.
Progress = Callable[[int, int], None]


class RevealKind(enum.Enum):
    """Who learns what: members at every party, members at one party, or the size only."""

    ALL = "all"
    PARTY = "party"
    SIZE = "size"


@dataclass(frozen=True)
class Reveal:
    """A parsed reveal mode; ``party`` is set only for :attr:`RevealKind.PARTY`."""

    kind: RevealKind
    party: str | None = None

    @classmethod
    def parse(cls, value: str | Reveal, parties: Iterable[str]) -> Reveal:
        """``"all"``, ``"size"`` or the name of one party."""
        if isinstance(value, Reveal):
            reveal = value
        elif value in (RevealKind.ALL.value, RevealKind.SIZE.value):
            reveal = cls(RevealKind(value))
        else:
            reveal = cls(RevealKind.PARTY, str(value))
        names = set(parties)
        if reveal.kind is RevealKind.PARTY and reveal.party not in names:
            raise PSIUsageError(
                f"reveal must be 'all', 'size' or a party of the session {sorted(names)}, "
                f"not {reveal.party!r}"
            )
        return reveal

    def learns_members(self, party: str) -> bool:
        return self.kind is RevealKind.ALL or (
            self.kind is RevealKind.PARTY and self.party == party
        )

    def learns_size(self, party: str) -> bool:
        return self.kind is RevealKind.SIZE or self.learns_members(party)

    @property
    def wire(self) -> str:
        return self.kind.value if self.party is None else f"party:{self.party}"


@message_type("psi.Hello")
@dataclass(frozen=True)
class Hello:
    """First message of every PSI session: parameters both sides must agree on."""

    version: str
    n: int
    reveal: str
    parties: tuple[str, ...]
    salt_share: bytes
    batch: int


@dataclass(frozen=True)
class PSIOutcome:
    """What the protocol core hands back: members are indices into the input id list."""

    size: int | None
    members: np.ndarray | None
    tag_bytes: int


def scaled_timeout(n_items: int, *, base: float = 60.0, per_item: float = 3e-4) -> float:
    """Seconds to wait for one peer message: ``base + per_item * n_items``.

    Each wait can span the peer's whole blinding pass over its items (about 30 us per item
    per core, plus slack for loaded machines), so the limit grows with the input instead of
    being fixed: 60 s + 300 s for a million items.
    """
    return base + per_item * max(0, n_items)


def random_permutation(n: int, rng: RandomSource) -> np.ndarray:
    """A uniform-up-to-2^-64-ties permutation from the CSPRNG: argsort of random 64-bit keys."""
    keys = np.frombuffer(rng.random_bytes(8 * n), dtype=np.uint64) if n else np.empty(0, np.uint64)
    return np.argsort(keys, kind="stable").astype(np.int64)


def as_void(tags: np.ndarray) -> np.ndarray:
    """View an ``(n, t)`` uint8 array as ``n`` opaque ``t``-byte scalars (sortable, hashable)."""
    tags = np.ascontiguousarray(tags, dtype=np.uint8)
    return tags.view(f"V{tags.shape[1]}").reshape(tags.shape[0])


def tags_in(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Which rows of ``own`` (n, t) occur among the rows of ``other`` (m, t).

    Sort + binary search: memory is one sorted copy of ``other`` and one index array (less than
    ``np.isin``, which sorts the concatenation of both).
    """
    if own.shape[0] == 0 or other.shape[0] == 0:
        return np.zeros(own.shape[0], dtype=bool)
    mine = as_void(own)
    ordered = np.sort(as_void(other))
    pos = np.searchsorted(ordered, mine)
    np.minimum(pos, ordered.shape[0] - 1, out=pos)
    hit: np.ndarray = ordered[pos] == mine
    return hit


def check_chunk(payload: object, *, rows: int, width: int, what: str) -> np.ndarray:
    """A received chunk must be a C-contiguous ``(rows, width)`` uint8 array."""
    if not isinstance(payload, np.ndarray) or payload.dtype != np.uint8:
        raise PSIProtocolError(f"{what}: expected a uint8 array, got {type(payload).__name__}")
    if payload.shape != (rows, width):
        raise PSIProtocolError(f"{what}: expected shape {(rows, width)}, got {payload.shape}")
    return payload


def batched(n: int, batch: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each batch of ``range(n)``."""
    for start in range(0, n, batch):
        yield start, min(n, start + batch)


def session_salt(shares: dict[str, bytes]) -> bytes:
    """Salt = SHA-256("vfl-psi-salt/1" || share of each party, in party-name order).

    Every party contributes 32 fresh random bytes, so no single party picks the salt.
    """
    h = hashlib.sha256(b"vfl-psi-salt/1")
    for name in sorted(shares):
        share = shares[name]
        h.update(len(name).to_bytes(2, "big") + name.encode() + share)
    return h.digest()


def check_hellos(
    mine: Hello,
    theirs: dict[str, object],
    parties: Sequence[str],
    *,
    max_peer_ids: int = DEFAULT_MAX_PEER_IDS,
) -> dict[str, Hello]:
    """Validate every peer's :class:`Hello` against ours; return them by party.

    A peer's announced set size ``n`` sizes this party's buffers, so it is refused above
    ``max_peer_ids`` before anything is allocated.
    """
    out: dict[str, Hello] = {}
    for peer, msg in theirs.items():
        if not isinstance(msg, Hello):
            raise PSIProtocolError(f"{peer} sent {type(msg).__name__} instead of a PSI hello")
        if msg.version != mine.version:
            raise PSIProtocolError(f"{peer} speaks {msg.version!r}, we speak {mine.version!r}")
        if msg.reveal != mine.reveal:
            raise PSIProtocolError(
                f"reveal mode mismatch: {peer} uses {msg.reveal!r}, we use {mine.reveal!r}"
            )
        if tuple(msg.parties) != tuple(parties):
            raise PSIProtocolError(f"party list mismatch: {peer} has {list(msg.parties)}")
        if (
            type(msg.n) is not int
            or type(msg.batch) is not int
            or not isinstance(msg.salt_share, bytes)
        ):
            raise PSIProtocolError(f"{peer} sent a hello with mistyped fields")
        if msg.n < 0 or not 1 <= msg.batch <= (1 << 24) or len(msg.salt_share) != 32:
            raise PSIProtocolError(f"{peer} sent an invalid hello")
        if msg.n > max_peer_ids:
            raise PSIProtocolError(
                f"{peer} announces {msg.n} ids, above the configured maximum of {max_peer_ids} "
                "(max_peer_ids); refusing before allocating"
            )
        out[peer] = msg
    return out
