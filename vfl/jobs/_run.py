"""Run one party's side of a job: handshake -> align -> split -> ``kind.run`` -> finish.

The job's kind (:func:`vfl.jobs._kinds.kind_of`, a :class:`vfl.core.JobKind`) says whether its
rows are aligned by PSI and split into train / test, and does the kind's own work; this module
does the rest, the same for every kind.

Sequential code against a :class:`protocols.channel.Channel`, so the same function runs over the
in-memory transport (tests) and over gRPC (``vfl run``). Every check that can fail on a party's
own input (its section, its columns, non-numeric features, a label column at a feature party)
runs before the first message; then the parties compare the SHA-256 digest of their parsed job
files, so a party running a different file is refused before any PSI or training.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protocols.channel import Channel
from protocols.session import agree_session
from vfl._progress import count_bar
from vfl.core import JobKind, PartyContext
from vfl.errors import ConfigError
from vfl.jobs._finish import Opening, finish_job
from vfl.jobs._kinds import kind_of
from vfl.jobs._metered import MeteredChannel
from vfl.jobs._overlap import check_overlap
from vfl.jobs._provenance import PartyIdentity, file_sha256, ids_sha256, work_dir_key
from vfl.jobs._spec import Job
from vfl.jobs._tracker import JobTracker

__all__ = ["run_job", "agreed_test_rows"]

logger = logging.getLogger("vfl.jobs")
DIGEST_TOPIC = "job/digest"


def _read_csv(path: Path, key: str, id_column: str | None = None) -> pd.DataFrame:
    """Read one party CSV; the id column (if any) as strings, so that no id becomes a float
    (``12345678901234567`` and ``12345678901234568`` are one float64)."""
    if not path.is_file():
        raise ConfigError(f"{key}: file not found: {path}")
    try:
        return pd.read_csv(path, dtype=None if id_column is None else {id_column: str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{key}: cannot read {path}: {str(exc).splitlines()[0]}") from None


def agreed_test_rows(n: int, *, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test rows over PSI-aligned rows: the same at every party (same order, seed)."""
    perm = np.random.default_rng([seed, 0x7E57]).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[: int(round(fraction * n))]] = True
    return mask


def _handshake(job: Job, party: str, channel: Channel, peers: list[str]) -> None:
    """Same job file (digest) and a protocol every party speaks, before any data moves; then a
    fresh session id for this run (:func:`protocols.session.agree_session`), bound into every
    later envelope, so a restarted party refuses the previous run's.

    Each party states the protocol version it runs and the protocol versions and model formats
    its code supports; a peer that cannot speak this party's protocol (an older or newer release)
    is refused with :class:`vfl.governance.IncompatibleVersion` naming it.
    """
    from vfl.governance import (
        MODEL_FORMAT_VERSION,
        PROTOCOL_VERSION,
        SUPPORTED_MODEL_FORMATS,
        SUPPORTED_PROTOCOLS,
        IncompatibleVersion,
        check_compatibility,
    )

    mine = {
        "job_id": job.job.id,
        "digest": job.digest,
        "protocol_version": PROTOCOL_VERSION,
        "protocols": sorted(SUPPORTED_PROTOCOLS),
        "model_formats": sorted(SUPPORTED_MODEL_FORMATS),
    }
    channel.broadcast(DIGEST_TOPIC, mine, peers=peers)
    for peer in peers:
        theirs = channel.recv(peer, DIGEST_TOPIC)
        if not isinstance(theirs, dict) or not isinstance(theirs.get("protocols"), list):
            raise IncompatibleVersion(
                f"{peer} did not state the protocol versions it speaks (a release older than "
                f"this one, which speaks protocol {PROTOCOL_VERSION}); upgrade {peer}"
            )
        check_compatibility(
            label=f"job {job.job.id} at {party}",
            model_format=MODEL_FORMAT_VERSION,
            protocol_version=PROTOCOL_VERSION,
            peer=peer,
            peer_model_formats=[v for v in theirs.get("model_formats", []) if isinstance(v, int)],
            peer_protocols=[v for v in theirs["protocols"] if isinstance(v, int)],
        )
        if theirs.get("digest") != job.digest:
            raise ConfigError(
                f"{peer} runs a different job file than {party} (job id {theirs.get('job_id')!r}, digest differs); every party must run the same file"
            )
    agree_session(channel, peers)


def _align(
    job: Job,
    party: str,
    channel: Channel,
    peers: list[str],
    df: pd.DataFrame,
    *,
    progress: bool = False,
    desc: str = "psi",
) -> pd.DataFrame:
    import psi

    section = job.party(party)
    with count_bar(desc, unit="pt", enabled=progress) as update:
        aligned = psi.align(
            df,
            channel=channel,
            id_column=section.id_column,
            peers=peers,
            duplicates=psi.Duplicates(job.psi.get("duplicates", "error")),
            progress=update,
        )
    if aligned is None:
        raise ConfigError(
            "this party does not learn the intersection; vfl run needs psi.reveal = 'all'"
        )
    # Every party knows the members' ids: sorting by the canonical id gives the same order at
    # every party, and the same batches from one run to the next (PSI's own order is random).
    keys = [psi.normalise_id(v) or b"" for v in aligned[section.id_column].tolist()]
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return aligned.iloc[order].reset_index(drop=True)


def run_job(
    job: Job,
    *,
    party: str,
    channel: Channel,
    work_dir: str | Path,
    progress: bool = False,
    identity: PartyIdentity | None = None,
) -> dict[str, Any]:
    """This party's side of ``job``; returns the JSON-ready result of DESIGN.md (``vfl run --json``).

    Everything the job does is recorded in ``work_dir`` (docs/governance.md, "What a job
    writes"): the audit log ``audit.db`` (signed with ``identity.signing_key``, else the work
    dir's own ``audit.key``), the registry ``registry.db`` (training jobs register this party's
    part of the model as a candidate) and the live run files under ``runs/JOB_ID/PARTY``. At the
    end the parties exchange signed audit chain heads. A job that fails leaves ``status.json``
    in phase ``failed`` with the error, a ``job.finished`` audit record with status ``failed``,
    and no ``result.json``; the error is re-raised.
    """
    t0 = time.perf_counter()
    metered = channel if isinstance(channel, MeteredChannel) else MeteredChannel(channel)
    job.party(party)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ident = (identity or PartyIdentity(work_dir_key(work))).for_party(party)
    tracker = JobTracker(job, party=party, channel=metered, work_dir=work, identity=ident)
    try:
        tracker.start()
        return _run(job, party, metered, tracker, progress=progress, t0=t0)
    except BaseException as exc:
        tracker.failed(exc)
        raise
    finally:
        tracker.close()


def _read_input(
    job: Job, party: str, tracker: JobTracker, path: Path, what: str, *, features: bool
) -> pd.DataFrame:
    df = _read_csv(path, f"parties.{party}.{what}", job.party(party).id_column)
    tracker.data(what, sha256=file_sha256(path), rows=int(df.shape[0]), columns=list(df.columns))
    job.check_data(party, df, what=what, features=features)
    return df


def _run(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    *,
    progress: bool,
    t0: float,
) -> dict[str, Any]:
    """Handshake -> align -> split -> ``kind.run`` -> finish, the same for every job kind."""
    kind = kind_of(job.job.type)
    peers = tracker.peers
    missing = sorted(set(peers) - set(channel.peers))
    if missing:
        raise ConfigError(
            f"the channel of {party} cannot reach {', '.join(missing)} (check federation.toml)"
        )
    inputs = _read_inputs(job, kind, party, tracker) if kind.aligns else None
    kind.check(job, party)  # configuration errors before any message
    _handshake(job, party, channel, peers)
    if inputs is None:  # horizontal: parties share features, not rows; nothing to align
        _fingerprint_inputs(job, party, tracker)
        opening = Opening(job_id=job.job.id, party=party, type=job.job.type)
        train, test = None, None
    else:
        aligned = _align_inputs(job, party, channel, tracker, *inputs, progress=progress)
        opening = aligned.opening
        train, test = aligned.data, aligned.test
        if kind.splits:
            train, test = _split(job, aligned)
            opening = dataclasses.replace(
                opening, rows={"train": int(train.shape[0]), "test": int(test.shape[0])}
            )
    if kind.trains:
        tracker.phase("train")
    ctx = PartyContext(
        job=job,
        party=party,
        peers=tuple(peers),
        channel=channel,
        run_dir=tracker.run_dir,
        tracker=tracker,
        train=train,
        test=test,
        progress=progress,
    )
    part = kind.run(ctx, job.model)
    return finish_job(job, party, channel, tracker, opening, part, t0=t0)


def _read_inputs(
    job: Job, kind: JobKind[Any], party: str, tracker: JobTracker
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """This party's ``data`` and ``test_data``, checked before any message."""
    section = job.party(party)
    features = kind.needs_features
    data = _read_input(job, party, tracker, section.data, "data", features=features)
    test = None
    if section.test_data is not None:
        test = _read_input(job, party, tracker, section.test_data, "test_data", features=features)
    return data, test


@dataclass(frozen=True)
class _Aligned:
    data: pd.DataFrame
    test: pd.DataFrame | None
    opening: Opening


def _align_inputs(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    data: pd.DataFrame,
    test: pd.DataFrame | None,
    *,
    progress: bool,
) -> _Aligned:
    section = job.party(party)
    peers = tracker.peers
    tracker.phase("psi")
    start = time.perf_counter()
    aligned = _align(job, party, channel, peers, data, progress=progress)
    tracker.psi(input_rows=int(data.shape[0]), intersection_size=int(aligned.shape[0]))
    check_overlap(job, party, peers, data, int(aligned.shape[0]))  # before anything trains
    tracker.data("aligned_ids", **_ids_fingerprint(aligned, section.id_column))
    psi_summary: dict[str, int] = {"intersection_size": int(aligned.shape[0])}
    aligned_test = None
    if test is not None:
        aligned_test = _align(job, party, channel, peers, test, progress=progress, desc="psi test")
        tracker.psi(
            input_rows=int(test.shape[0]),
            intersection_size=int(aligned_test.shape[0]),
            dataset="test_data",
        )
        check_overlap(job, party, peers, test, int(aligned_test.shape[0]), dataset="test_data")
        tracker.data("aligned_test_ids", **_ids_fingerprint(aligned_test, section.id_column))
        psi_summary["test_intersection_size"] = int(aligned_test.shape[0])
    tracker.crypto(scheme="ecdh-x25519", key_bits=255, purpose="psi")
    opening = Opening(
        job_id=job.job.id,
        party=party,
        type=job.job.type,
        psi=psi_summary,
        timing={"psi": time.perf_counter() - start},
    )
    return _Aligned(aligned, aligned_test, opening)


def _split(job: Job, aligned: _Aligned) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train / test rows: the aligned ``test_data``, else the agreed test fraction."""
    if aligned.test is not None:
        return aligned.data, aligned.test
    rows = aligned.data
    mask = agreed_test_rows(
        rows.shape[0], fraction=job.evaluation.test_fraction, seed=job.evaluation.seed
    )
    return rows[~mask].reset_index(drop=True), rows[mask].reset_index(drop=True)


def _ids_fingerprint(df: pd.DataFrame, id_column: str) -> dict[str, Any]:
    import psi

    ids = [psi.normalise_id(v) or b"" for v in df[id_column].tolist()]
    return {"sha256": ids_sha256(ids), "rows": len(ids), "columns": [id_column]}


def _fingerprint_inputs(job: Job, party: str, tracker: JobTracker) -> None:
    """Fingerprints of the files a kind that does not align reads itself (when they exist)."""
    section = job.party(party)
    for what, path in (("data", section.data), ("test_data", section.test_data)):
        if path is not None and path.is_file():
            df = _read_csv(path, f"parties.{party}.{what}")
            tracker.data(
                what, sha256=file_sha256(path), rows=int(df.shape[0]), columns=list(df.columns)
            )
