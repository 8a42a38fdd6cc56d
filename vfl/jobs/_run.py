"""Run one party's side of a job: check the file and data, align by PSI, train, evaluate, save.

Sequential code against a :class:`protocols.channel.Channel`, so the same function runs over the
in-memory transport (tests) and over gRPC (``vfl run``). Every check that can fail on a party's
own input (its section, its columns, non-numeric features, a label column at a feature party)
runs before the first message; then the parties compare the SHA-256 digest of their parsed job
files, so a party running a different file is refused before any PSI or training.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protocols.channel import Channel
from vfl.errors import ConfigError
from vfl.jobs._metered import MeteredChannel
from vfl.jobs._spec import Job

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
    mine = {"job_id": job.job.id, "digest": job.digest}
    channel.broadcast(DIGEST_TOPIC, mine, peers=peers)
    for peer in peers:
        theirs = channel.recv(peer, DIGEST_TOPIC)
        if not isinstance(theirs, dict) or theirs.get("digest") != job.digest:
            raise ConfigError(
                f"{peer} runs a different job file than {party} (job id {theirs.get('job_id') if isinstance(theirs, dict) else '?'!r}, digest differs); every party must run the same file"
            )


def _align(
    job: Job, party: str, channel: Channel, peers: list[str], df: pd.DataFrame
) -> pd.DataFrame:
    import psi

    section = job.party(party)
    aligned = psi.align(
        df,
        channel=channel,
        id_column=section.id_column,
        peers=peers,
        duplicates=psi.Duplicates(job.psi.get("duplicates", "error")),
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
    job: Job, *, party: str, channel: Channel, work_dir: str | Path, progress: bool = False
) -> dict[str, Any]:
    """This party's side of ``job``; returns the JSON-ready result of DESIGN.md (``vfl run --json``)."""
    t0 = time.perf_counter()
    channel = channel if isinstance(channel, MeteredChannel) else MeteredChannel(channel)
    section = job.party(party)
    peers = sorted(p for p in job.parties if p != party)
    missing = sorted(set(peers) - set(channel.peers))
    if missing:
        raise ConfigError(
            f"the channel of {party} cannot reach {', '.join(missing)} (check federation.toml)"
        )
    data = _read_csv(section.data, f"parties.{party}.data")
    job.check_data(party, data)
    test = None
    if section.test_data is not None:
        test = _read_csv(section.test_data, f"parties.{party}.test_data")
        job.check_data(party, test, what="test_data")
    if job.job.type == "hetero_lr":
        _model_for(job, party)  # configuration errors before any message
    timing: dict[str, float] = {}
    _handshake(job, party, channel, peers)
    if job.job.type == "fedavg":
        # Horizontal: parties share features, not rows; there is nothing to align.
        from vfl.horizontal import run_fedavg_job

        run_dir = Path(work_dir) / "runs" / job.job.id / party
        fed = run_fedavg_job(
            job,
            party=party,
            channel=channel,
            work_dir=run_dir,
            on_round=functools.partial(_report_round, progress=progress),
        )
        fed.setdefault("timing", {})["total"] = time.perf_counter() - t0
        fed["bytes_sent"] = channel.bytes_sent
        return fed
    start = time.perf_counter()
    aligned = _align(job, party, channel, peers, data)
    aligned_test = _align(job, party, channel, peers, test) if test is not None else None
    timing["psi"] = time.perf_counter() - start
    run_dir = Path(work_dir) / "runs" / job.job.id / party
    run_dir.mkdir(parents=True, exist_ok=True)
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
    else:
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
        if job.job.type == "split_nn":
            _run_split_nn(job, party, channel, train, evaluate, run_dir, result)
            timing.update(result.pop("_timing", {}))
            timing["total"] = time.perf_counter() - t0
            result["bytes_sent"] = channel.bytes_sent
            return result
        model = _model_for(job, party, progress=progress)
        start, cpu = time.perf_counter(), time.process_time()
        if party == job.job.label_party:
            model.fit(train, channel=channel, feature_parties=job.feature_parties)
        else:
            model.fit(train, channel=channel, label_party=job.job.label_party)
        timing["train"] = time.perf_counter() - start
        timing["train_cpu"] = time.process_time() - cpu  # this process, all threads
        start = time.perf_counter()
        if evaluate.shape[0]:
            if party == job.job.label_party:
                result["metrics"] = model.evaluate(evaluate, channel=channel, prefix="test_")
            else:
                model.evaluate(evaluate, channel=channel)
        timing["evaluate"] = time.perf_counter() - start
        model_path = run_dir / "model.json"
        model.save(model_path)
        result["model_path"] = str(model_path)
        result["crypto"] = dict(model.crypto_)
        result["history"] = getattr(model, "history_", [])
        result["rows"] = {"train": int(train.shape[0]), "test": int(evaluate.shape[0])}
    timing["total"] = time.perf_counter() - t0
    result["bytes_sent"] = channel.bytes_sent
    logger.info("job %s party %s done in %.2f s", job.job.id, party, timing["total"])
    return result


def _model_for(job: Job, party: str, *, progress: bool = False) -> Any:
    from vfl.hetero_lr import HeteroLRFeatureParty, HeteroLRLabelParty

    section = job.party(party)
    features = list(section.features) if section.features is not None else None
    if party == job.job.label_party:
        return HeteroLRLabelParty(
            job.model,
            label_column=section.label_column or "y",
            id_column=section.id_column,
            feature_columns=features,
            progress=progress,
        )
    return HeteroLRFeatureParty(job.model, id_column=section.id_column, feature_columns=features)


def _run_split_nn(
    job: Job,
    party: str,
    channel: Channel,
    train: pd.DataFrame,
    evaluate: pd.DataFrame,
    run_dir: Path,
    result: dict[str, Any],
) -> None:
    from vfl.split_nn import run_split_nn_job

    section = job.party(party)
    label_party = job.job.label_party
    assert label_party is not None  # parse_job requires it for split_nn
    out = run_split_nn_job(
        model=job.model,
        party=party,
        label_party=label_party,
        feature_parties=job.feature_parties,
        train=train.drop(columns=[section.id_column]),
        test=evaluate.drop(columns=[section.id_column]) if evaluate.shape[0] else None,
        channel=channel,
        run_dir=run_dir,
        label_column=section.label_column or "y",
        feature_columns=list(section.features) if section.features else None,
    )
    for key in ("metrics", "privacy", "history", "crypto", "model_path"):
        if key in out:
            result[key] = out[key]
    result["_timing"] = out.get("timing", {})
    result["rows"] = {"train": int(train.shape[0]), "test": int(evaluate.shape[0])}


def _report_round(record: Any, *, progress: bool) -> None:
    """Progress of one horizontal round (the aggregator's view): logged, and printed if asked."""
    metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(record.metrics.items()))
    line = (
        f"round {record.round}: {len(record.accepted)}/{len(record.sampled)} updates accepted"
        f"{f', dropped {sorted(record.dropped)}' if record.dropped else ''}"
        f"{f', rejected {sorted(record.rejected)}' if record.rejected else ''}"
        f", {record.seconds:.2f} s {metrics}"
    )
    logger.info(line)
    if progress:
        print(line, file=sys.stderr, flush=True)
