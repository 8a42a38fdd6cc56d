"""The end of a job at one party: privacy record, registration, closing the chain, heads.

:func:`finish_job` turns the kind's :class:`vfl.core.PartResult` into ``result.json``, registers this party's model part (:mod:`._register`), writes the job's last
audit record (``job.finished``), exchanges signed chain heads with the job's other parties, and
writes ``result.json`` and the ``done`` phase.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto import compute
from vfl.core import ModelPart, PartResult
from vfl.jobs._metered import MeteredChannel
from vfl.jobs._provenance import code_version
from vfl.jobs._register import (
    agree_version,
    participant_metrics,
    register_part,
    validation_metrics,
)
from vfl.jobs._spec import Job
from vfl.jobs._tracker import JobTracker
from vfl.jobs._views import plain, roles

__all__ = ["Opening", "finish_job", "result_json"]

logger = logging.getLogger("vfl.jobs")


@dataclass(frozen=True)
class Opening:
    """The runner's own fields of ``result.json``: who, what, and the alignment (PSI) figures."""

    job_id: str
    party: str
    type: str
    psi: Mapping[str, int] | None = None
    rows: Mapping[str, int] | None = None
    timing: Mapping[str, float] = field(default_factory=dict)


def result_json(opening: Opening, part: PartResult, *, run_dir: Path) -> dict[str, Any]:
    """The JSON of ``vfl run --json`` before finishing (registration, heads, bytes, total)."""
    out: dict[str, Any] = {"job_id": opening.job_id, "party": opening.party, "type": opening.type}
    if opening.psi is not None:
        out["psi"] = dict(opening.psi)
    if opening.rows is not None:
        out["rows"] = dict(opening.rows)
    out["metrics"] = dict(part.metrics)
    out["timing"] = {**opening.timing, **part.timing}
    out["crypto"] = dict(part.crypto)
    out["run_dir"] = str(run_dir)
    if part.history is not None:
        out["history"] = list(part.history)
    if part.privacy is not None:
        out["privacy"] = dict(part.privacy)
    out.update(part.extra)
    return out


def finish_job(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    opening: Opening,
    part: PartResult,
    *,
    t0: float,
) -> dict[str, Any]:
    """Register the model, record privacy, close the chain, exchange heads, write result.json."""
    if part.privacy is not None:
        tracker.privacy(part.privacy)
    result = result_json(opening, part, run_dir=tracker.run_dir)
    if part.model is not None:
        result["model"], contribution = register_model(
            job, party, channel, tracker, part, part.model
        )
        if contribution is not None:
            result["contribution"] = contribution
    tracker.finished({k: v for k, v in part.metrics.items() if isinstance(v, int | float)})
    result["audit"] = exchange_job_heads(job, party, channel, tracker)
    result["timing"]["total"] = time.perf_counter() - t0
    result["bytes_sent"] = channel.bytes_sent
    result["bytes_received"] = channel.bytes_received
    backend = compute.current()  # vfl run --compute: this party's own backend, if installed
    if backend is not None:
        result["compute"] = backend.stats().as_dict()
    tracker.done(result)
    logger.info("job %s party %s done in %.2f s", job.job.id, party, result["timing"]["total"])
    return result


def register_model(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    part: PartResult,
    model_part: ModelPart,
) -> tuple[dict[str, str], dict[str, dict[str, float]] | None]:
    """Register ``model_part`` in ``WORK_DIR/registry.db`` at the version its ``parties`` agree on
    (docs/governance.md, "Registration"); return ``{name, version, stage}`` and, when every party
    reported a weight norm, each party's contribution (``weight_norm``, ``weight_share``)."""
    from vfl.governance import ModelMetadata, ModelRegistry

    name = job.model_name
    metrics = {k: float(v) for k, v in part.metrics.items() if isinstance(v, int | float)}
    registering = list(model_part.parties) or [party]
    with ModelRegistry(
        tracker.work_dir / "registry.db", party=party, audit_log=tracker.audit
    ) as registry:
        others = [p for p in registering if p != party]
        norm = model_part.weight_norm
        contributed: dict[str, dict[str, float]] = {}
        if others:
            version, reported, contributed = agree_version(
                channel,
                registry,
                name=name,
                peers=others,
                metrics=metrics,
                job_id=job.job.id,
                contribution=None if norm is None else {"weight_norm": norm},
            )
            reservation: str | None = job.job.id
        else:
            # Alone, but above what concurrent multi-party jobs have reserved here.
            version, reported = str(registry.next_free(name)), {party: metrics}
            reservation = None
        role = roles(job)
        train_seconds = part.timing.get("train", 0.0)
        metadata = ModelMetadata(
            hyperparameters={"model": plain(job.model_table), "resolved": plain(job.model)},
            data_version=tracker.data_version(),
            participants=role,
            training_seconds=float(train_seconds)
            if isinstance(train_seconds, int | float)
            else 0.0,
            metrics=participant_metrics(role, reported),
            validation_metrics=validation_metrics(reported, model_part.holder),
            dp=plain(part.privacy) if part.privacy else None,
            code_version=code_version(),
            job_id=job.job.id,
        )
        model = register_part(
            registry,
            name=name,
            version=version,
            artefact=model_part.path,
            metadata=metadata,
            actor=party,
            reservation=reservation,
        )
    tracker.model(name=model.name, version=model.version, stage=str(model.stage))
    norms = {p: c["weight_norm"] for p, c in contributed.items() if "weight_norm" in c}
    contribution = None
    if norms and set(norms) == set(registering):
        contribution = tracker.model_contributions(norms)
    return {"name": model.name, "version": model.version, "stage": str(model.stage)}, contribution


def exchange_job_heads(
    job: Job, party: str, channel: MeteredChannel, tracker: JobTracker
) -> dict[str, Any]:
    """Exchange signed chain heads with the job's peers; the peers' heads are stored in audit.db.

    The peers' heads are pinned to their public keys when this party knows them all."""
    from vfl.governance import exchange_heads

    keys = tracker.identity.verify_keys
    pinned = keys if all(p in keys for p in tracker.peers) else None
    own = tracker.audit.head(job_id=job.job.id)
    out: dict[str, Any] = {
        "path": str(tracker.audit.path),
        "head": {"seq": own.seq, "hash": own.hash},
    }
    try:
        heads = exchange_heads(
            channel, tracker.audit, job_id=job.job.id, expected_keys=pinned, peers=tracker.peers
        )
    except Exception as exc:  # the model is trained and registered: report, do not fail the job
        out["error"] = tracker.head_exchange_failed(exc)
        return out
    out["peer_heads"] = {p: {"seq": h.seq, "hash": h.hash} for p, h in sorted(heads.items())}
    return out
