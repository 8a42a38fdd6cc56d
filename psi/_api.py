"""The public entry points: :func:`intersect` on a column of ids, :func:`align` on a DataFrame."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crypto import compute as _compute
from crypto.compute import ComputeBackend, LocalBackend
from crypto.random import RandomSource, resolve
from protocols.channel import Channel
from psi._common import (
    DEFAULT_BATCH,
    DEFAULT_MAX_PEER_IDS,
    Progress,
    PSIOutcome,
    Reveal,
    RevealKind,
)
from psi._normalise import Duplicates, NormalisedIds, normalise_ids
from psi._twoparty import run_two_party
from psi.errors import PSIUsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PSIResult", "intersect", "align"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PSIResult:
    """This party's output of one PSI session.

    ``size`` is ``None`` when this party learns nothing (another party is the only receiver);
    ``rows`` (input row positions of the members, in the order shared by every receiving
    party) is ``None`` unless this party learns the members.
    """

    party: str
    reveal: Reveal
    size: int | None
    rows: np.ndarray | None
    n_input: int
    n_unique: int
    n_duplicates_dropped: int
    tag_bytes: int


def _session_parties(channel: Channel, peers: Iterable[str] | None) -> tuple[str, ...]:
    chosen = tuple(channel.peers) if peers is None else tuple(peers)
    if not chosen:
        raise PSIUsageError("PSI needs at least one peer")
    unknown = sorted(set(chosen) - set(channel.peers))
    if unknown:
        raise PSIUsageError(f"unknown peer(s) {unknown}; the channel knows {list(channel.peers)}")
    if channel.party in chosen or len(set(chosen)) != len(chosen):
        raise PSIUsageError("peers must be distinct and must not include this party")
    return tuple(sorted(set(chosen) | {channel.party}))


def intersect(
    ids: Sequence[object] | np.ndarray | pd.Series | NormalisedIds,
    *,
    channel: Channel,
    peers: Iterable[str] | None = None,
    reveal: str | Reveal = "all",
    leader: str | None = None,
    duplicates: Duplicates | str = Duplicates.ERROR,
    column: str = "id",
    rng: RandomSource | None = None,
    workers: int | None = None,
    batch: int = DEFAULT_BATCH,
    timeout: float | None = None,
    progress: Progress | None = None,
    max_peer_ids: int = DEFAULT_MAX_PEER_IDS,
    compute: ComputeBackend | None = None,
) -> PSIResult:
    """Private set intersection of this party's ``ids`` with every peer's, over ``channel``.

    Two parties run ECDH-PSI; three or more run the multi-party protocol led by ``leader``
    (default: the sole receiver if ``reveal`` names one, else the first party by name), which
    reveals no pairwise intersection sizes. Ids are
    normalised (see :func:`psi.normalise_id`); nulls are an error; duplicates follow
    ``duplicates`` (ids already normalised by :func:`psi.normalise_ids` are used as they are,
    so a caller that checked them before connecting does not pay twice). ``reveal`` is ``"all"``, ``"size"`` or one party's name. ``timeout``
    (seconds per wait) defaults to a limit that grows with the input size. ``workers=0`` runs
    inline; ``None`` uses every core. A peer announcing more than ``max_peer_ids`` ids
    (default 200M) is refused with :class:`PSIProtocolError` before anything is allocated.


    The blinding and re-keying batches run on ``compute`` (e.g. a
    :class:`crypto.compute.RayBackend` on this party's own Ray cluster), else on the backend
    installed by :func:`crypto.compute.configure`, else on ``workers`` local processes started
    for this call. The result does not depend on the backend.
    """
    parties = _session_parties(channel, peers)
    parsed = Reveal.parse(reveal, parties)
    if batch < 1:
        raise PSIUsageError("batch must be >= 1")
    if max_peer_ids < 0:
        raise PSIUsageError("max_peer_ids must be >= 0")
    if isinstance(ids, NormalisedIds):
        norm = ids
    else:
        norm = normalise_ids(ids, column=column, duplicates=duplicates)
    source = resolve(rng)
    backend = compute or _compute.current()
    owned = LocalBackend(workers=workers) if backend is None else None
    pool = owned if owned is not None else backend
    assert pool is not None
    try:
        if len(parties) == 2:
            (peer,) = (p for p in parties if p != channel.party)
            outcome: PSIOutcome = run_two_party(
                norm,
                channel=channel,
                peer=peer,
                reveal=parsed,
                rng=source,
                pool=pool,
                batch=batch,
                timeout=timeout,
                progress=progress,
                max_peer_ids=max_peer_ids,
            )
        else:
            from psi._multiparty import run_multi_party

            if leader is not None:
                lead = leader
            elif parsed.kind is RevealKind.PARTY and parsed.party is not None:
                lead = parsed.party
            else:
                lead = parties[0]
            if lead not in parties:
                raise PSIUsageError(f"leader {lead!r} is not a party of the session")
            outcome = run_multi_party(
                norm,
                channel=channel,
                parties=parties,
                leader=lead,
                reveal=parsed,
                rng=source,
                pool=pool,
                batch=batch,
                timeout=timeout,
                progress=progress,
                max_peer_ids=max_peer_ids,
            )
    finally:
        if owned is not None:
            owned.close()
    rows = None if outcome.members is None else norm.rows[outcome.members]
    logger.info(
        "%s: PSI done (%d ids, reveal=%s, intersection=%s)",
        channel.party,
        len(norm),
        parsed.wire,
        outcome.size,
    )
    return PSIResult(
        party=channel.party,
        reveal=parsed,
        size=outcome.size,
        rows=rows,
        n_input=norm.n_input,
        n_unique=len(norm),
        n_duplicates_dropped=norm.n_duplicates_dropped,
        tag_bytes=outcome.tag_bytes,
    )


def align(
    df: pd.DataFrame,
    *,
    channel: Channel,
    id_column: str,
    peers: Iterable[str] | None = None,
    reveal: str | Reveal = "all",
    leader: str | None = None,
    duplicates: Duplicates | str = Duplicates.ERROR,
    rng: RandomSource | None = None,
    workers: int | None = None,
    batch: int = DEFAULT_BATCH,
    timeout: float | None = None,
    progress: Progress | None = None,
    max_peer_ids: int = DEFAULT_MAX_PEER_IDS,
    compute: ComputeBackend | None = None,
) -> pd.DataFrame | None:
    """This party's rows whose id is in the intersection, in the same order at every party.

    No raw id leaves the party. Row order is the order of the members' shared PSI tags (the
    same at every party that learns the members); the index is reset. Returns ``None`` at a
    party that does not learn the members (``reveal`` names another party). ``reveal="size"``
    is refused: use :func:`intersect` for the size.
    """
    if id_column not in df.columns:
        raise PSIUsageError(f"id column {id_column!r} not found; columns are {list(df.columns)}")
    if (reveal if isinstance(reveal, str) else reveal.kind.value) == RevealKind.SIZE.value:
        raise PSIUsageError("align needs the members; use psi.intersect(..., reveal='size')")
    result = intersect(
        df[id_column],
        channel=channel,
        peers=peers,
        reveal=reveal,
        leader=leader,
        duplicates=duplicates,
        column=id_column,
        rng=rng,
        workers=workers,
        batch=batch,
        timeout=timeout,
        progress=progress,
        max_peer_ids=max_peer_ids,
        compute=compute,
    )
    if result.rows is None:
        return None
    return df.iloc[result.rows].reset_index(drop=True)
