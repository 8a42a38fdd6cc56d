"""Run one party's side of a job: check the file and data, align by PSI, train, evaluate, save.

Sequential code against a :class:`protocols.channel.Channel`, so the same function runs over the
in-memory transport (tests) and over gRPC (``vfl run``). Every check that can fail on a party's
own input (its section, its columns, non-numeric features, a label column at a feature party)
runs before the first message; then the parties compare the SHA-256 digest of their parsed job
files, so a party running a different file is refused before any PSI or training.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protocols.channel import Channel
from vfl._progress import count_bar
from vfl.errors import ConfigError
from vfl.jobs._finish import finish_job
from vfl.jobs._metered import MeteredChannel
from vfl.jobs._overlap import check_overlap
from vfl.jobs._provenance import PartyIdentity, file_sha256, ids_sha256, work_dir_key
from vfl.jobs._spec import Job
from vfl.jobs._tracker import JobTracker
from vfl.jobs._trainers import (
    model_for,
    report_round,
    train_hetero_lr,
    train_secureboost,
    train_split_nn,
)

__all__ = ["run_job", "agreed_test_rows"]

logger = logging.getLogger("vfl.jobs")
DIGEST_TOPIC = "job/digest"


def _read_csv(path: Path, key: str) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(f"{key}: file not found: {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{key}: cannot read {path}: {str(exc).splitlines()[0]}") from None


def agreed_test_rows(n: int, *, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test rows over PSI-aligned rows: the same at every party (same order, seed)."""
    perm = np.random.default_rng([seed, 0x7E57]).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[: int(round(fraction * n))]] = True
    return mask


def _handshake(job: Job, party: str, channel: Channel, peers: list[str]) -> None:
    """Same job file (digest) and a protocol every party speaks, before any data moves.

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


def _read_input(job: Job, party: str, tracker: JobTracker, path: Path, what: str) -> pd.DataFrame:
    df = _read_csv(path, f"parties.{party}.{what}")
    tracker.data(what, sha256=file_sha256(path), rows=int(df.shape[0]), columns=list(df.columns))
    job.check_data(party, df, what=what)
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
    section = job.party(party)
    peers = tracker.peers
    missing = sorted(set(peers) - set(channel.peers))
    if missing:
        raise ConfigError(
            f"the channel of {party} cannot reach {', '.join(missing)} (check federation.toml)"
        )
    if job.job.type == "fedavg":
        _handshake(job, party, channel, peers)
        return _run_fedavg(job, party, channel, tracker, progress=progress, t0=t0)
    data = _read_input(job, party, tracker, section.data, "data")
    test = None
    if section.test_data is not None:
        test = _read_input(job, party, tracker, section.test_data, "test_data")
    if job.job.type == "hetero_lr":
        model_for(job, party)  # configuration errors before any message
    timing: dict[str, float] = {}
    _handshake(job, party, channel, peers)
    tracker.phase("psi")
    start = time.perf_counter()
    aligned = _align(job, party, channel, peers, data, progress=progress)
    tracker.psi(input_rows=int(data.shape[0]), intersection_size=int(aligned.shape[0]))
    check_overlap(job, party, peers, data, int(aligned.shape[0]))  # before anything trains
    tracker.data("aligned_ids", **_ids_fingerprint(aligned, section.id_column))
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
    tracker.crypto(scheme="ecdh-x25519", key_bits=255, purpose="psi")
    timing["psi"] = time.perf_counter() - start
    run_dir = tracker.run_dir
    result: dict[str, Any] = {
        "job_id": job.job.id,
        "party": party,
        "type": job.job.type,
        "psi": {
            "intersection_size": int(aligned.shape[0]),
            **(
                {"test_intersection_size": int(aligned_test.shape[0])}
                if aligned_test is not None
                else {}
            ),
        },
        "metrics": {},
        "timing": timing,
        "crypto": {"scheme": "ecdh-x25519" if job.job.type == "psi" else job.crypto.scheme},
        "run_dir": str(run_dir),
    }
    if job.job.type == "psi":
        out = run_dir / "aligned.csv"
        partial = out.with_name(f".{out.name}.partial")
        aligned.to_csv(partial, index=False)
        os.replace(partial, out)  # never a half-written aligned.csv
        result["aligned_csv"] = str(out)
        return finish_job(job, party, channel, tracker, result, t0=t0, artefact=None)
    if aligned_test is None:
        mask = agreed_test_rows(
            aligned.shape[0], fraction=job.evaluation.test_fraction, seed=job.evaluation.seed
        )
        train, evaluate = (
            aligned[~mask].reset_index(drop=True),
            aligned[mask].reset_index(drop=True),
        )
    else:
        train, evaluate = aligned, aligned_test
    result["rows"] = {"train": int(train.shape[0]), "test": int(evaluate.shape[0])}
    tracker.phase("train")
    if job.job.type == "split_nn":
        train_split_nn(
            job, party, channel, train, evaluate, run_dir, result, tracker, progress=progress
        )
        timing.update(result.pop("_timing", {}))
    elif job.job.type == "secureboost":
        train_secureboost(job, party, channel, train, evaluate, run_dir, result, tracker)
        timing.update(result.pop("_timing", {}))
    else:
        train_hetero_lr(job, party, channel, train, evaluate, run_dir, result, tracker, progress)
    crypto = result.get("crypto", {})
    if isinstance(crypto, dict) and crypto.get("scheme"):
        key_bits = crypto.get("key_bits")
        tracker.crypto(
            scheme=str(crypto["scheme"]),
            key_bits=key_bits if isinstance(key_bits, int) else None,
            purpose="train",
        )
    model_path = result.get("model_path")
    return finish_job(
        job,
        party,
        channel,
        tracker,
        result,
        t0=t0,
        artefact=Path(model_path) if model_path else None,
        registering=sorted(job.parties),
    )


def _ids_fingerprint(df: pd.DataFrame, id_column: str) -> dict[str, Any]:
    import psi

    ids = [psi.normalise_id(v) or b"" for v in df[id_column].tolist()]
    return {"sha256": ids_sha256(ids), "rows": len(ids), "columns": [id_column]}


def _run_fedavg(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    *,
    progress: bool,
    t0: float,
) -> dict[str, Any]:
    # Horizontal: parties share features, not rows; there is nothing to align.
    from vfl.horizontal import run_fedavg_job

    section = job.party(party)
    for what, path in (("data", section.data), ("test_data", section.test_data)):
        if path is not None and path.is_file():
            df = _read_csv(path, f"parties.{party}.{what}")
            tracker.data(
                what, sha256=file_sha256(path), rows=int(df.shape[0]), columns=list(df.columns)
            )
    tracker.phase("train")

    def on_round(record: Any) -> None:
        report_round(record, progress=progress)
        dropped = set(getattr(record, "dropped", {}) or {})
        sampled = list(getattr(record, "sampled", ()) or ())
        privacy = getattr(record, "privacy", None) or {}  # with DP: epsilon, epsilon_round, delta

        def number(key: str) -> float | None:
            value = privacy.get(key)
            return float(value) if isinstance(value, int | float) else None

        tracker.round(
            metrics=dict(record.metrics),
            seconds=float(record.seconds),
            expected=sampled,
            responded=[p for p in sampled if p not in dropped],
            epsilon=number("epsilon"),
            epsilon_round=number("epsilon_round"),
            delta=number("delta"),
            contributions=dict(getattr(record, "contributions", None) or {}),
        )

    fed = run_fedavg_job(
        job, party=party, channel=channel, work_dir=tracker.run_dir, on_round=on_round
    )
    fed.setdefault("type", "fedavg")
    fed.setdefault("metrics", {})
    fed.setdefault("timing", {})
    if fed.get("role") == "aggregator":
        tracker.crypto(scheme=str(fed.get("crypto", {}).get("scheme", "plain")), key_bits=None,
                       purpose="train")  # fmt: skip
    artefact = tracker.run_dir / "global_params.npy"
    return finish_job(
        job,
        party,
        channel,
        tracker,
        fed,
        t0=t0,
        artefact=artefact if fed.get("role") == "aggregator" and artefact.is_file() else None,
        registering=[party],
    )
