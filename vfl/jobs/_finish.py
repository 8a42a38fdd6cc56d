"""The end of a job at one party: privacy record, registration, closing the chain, heads.

:func:`finish_job` registers this party's model part (:mod:`._register`), writes the job's last
audit record (``job.finished``), exchanges signed chain heads with the job's other parties, and
writes ``result.json`` and the ``done`` phase.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from vfl.jobs._metered import MeteredChannel
from vfl.jobs._provenance import code_version
from vfl.jobs._register import (
    agree_version,
    participant_metrics,
    register_part,
    validation_metrics,
    weight_norm,
)
from vfl.jobs._spec import Job
from vfl.jobs._tracker import JobTracker, plain, roles

__all__ = ["finish_job"]

logger = logging.getLogger("vfl.jobs")


def finish_job(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    result: dict[str, Any],
    *,
    t0: float,
    artefact: Path | None,
    registering: list[str] | None = None,
) -> dict[str, Any]:
    """Register the model, record privacy, close the chain, exchange heads, write result.json."""
    privacy = result.get("privacy")
    if isinstance(privacy, dict):
        tracker.privacy(privacy)
    if artefact is not None:
        result["model"] = register_model(
            job, party, channel, tracker, result, artefact, registering
        )
    tracker.finished(
        {k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, int | float)}
    )
    result["audit"] = exchange_job_heads(job, party, channel, tracker)
    result.setdefault("timing", {})["total"] = time.perf_counter() - t0
    result["bytes_sent"] = channel.bytes_sent
    result["bytes_received"] = channel.bytes_received
    tracker.done(result)
    logger.info("job %s party %s done in %.2f s", job.job.id, party, result["timing"]["total"])
    return result


def register_model(
    job: Job,
    party: str,
    channel: MeteredChannel,
    tracker: JobTracker,
    result: dict[str, Any],
    artefact: Path,
    registering: list[str] | None,
) -> dict[str, str]:
    """Register ``artefact`` in ``WORK_DIR/registry.db`` at the version the ``registering``
    parties agree on (docs/governance.md, "Registration"); return ``{name, version, stage}``."""
    from vfl.governance import ModelMetadata, ModelRegistry

    name = job.model_name
    metrics = {
        k: float(v) for k, v in (result.get("metrics") or {}).items() if isinstance(v, int | float)
    }
    with ModelRegistry(
        tracker.work_dir / "registry.db", party=party, audit_log=tracker.audit
    ) as registry:
        others = [p for p in (registering or [party]) if p != party]
        norm = weight_norm(artefact) if job.job.type == "hetero_lr" else None
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
        holder = job.job.label_party if job.job.type != "fedavg" else job.job.aggregator
        privacy = result.get("privacy")
        metadata = ModelMetadata(
            hyperparameters={"model": plain(job.model_table), "resolved": plain(job.model)},
            data_version=tracker.data_version(),
            participants=role,
            training_seconds=float(result.get("timing", {}).get("train", 0.0)),
            metrics=participant_metrics(role, reported),
            validation_metrics=validation_metrics(reported, holder),
            dp=plain(privacy) if isinstance(privacy, dict) and privacy else None,
            code_version=code_version(),
            job_id=job.job.id,
        )
        model = register_part(
            registry,
            name=name,
            version=version,
            artefact=artefact,
            metadata=metadata,
            actor=party,
            reservation=reservation,
        )
    tracker.model(name=model.name, version=model.version, stage=str(model.stage))
    norms = {p: c["weight_norm"] for p, c in contributed.items() if "weight_norm" in c}
    if norms and set(norms) == set(registering or [party]):
        result["contribution"] = tracker.model_contributions(norms)
    return {"name": model.name, "version": model.version, "stage": str(model.stage)}


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
