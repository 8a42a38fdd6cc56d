"""The kinds of audit events jobs and the registry write, and typed helpers that write them.

Each helper appends one record with a fixed ``event`` name (:class:`EventKind`) and a details
object whose keys are the helper's keyword arguments, so reports can rely on the shape.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from vfl.governance._audit import AuditLog
from vfl.governance._canonical import canonical_json
from vfl.governance._records import AuditRecord

__all__ = [
    "EventKind",
    "CATEGORIES",
    "category_of",
    "record_job_started",
    "record_job_finished",
    "record_data_fingerprint",
    "record_psi_result",
    "record_participants",
    "record_hyperparameters",
    "record_crypto",
    "record_dp_parameters",
    "record_epsilon_spent",
    "record_round_metrics",
    "record_approval",
]


class EventKind(enum.StrEnum):
    """Event names written to the chain."""

    JOB_STARTED = "job.started"
    JOB_FINISHED = "job.finished"
    DATA_FINGERPRINT = "data.fingerprint"
    PSI_RESULT = "psi.result"
    PARTICIPANTS = "job.participants"
    HYPERPARAMETERS = "job.hyperparameters"
    CRYPTO = "crypto.scheme"
    DP_PARAMETERS = "privacy.dp_parameters"
    EPSILON_SPENT = "privacy.epsilon_spent"
    ROUND_METRICS = "train.round_metrics"
    CONTRIBUTION = "train.contribution"
    MODEL_REGISTERED = "model.registered"
    MODEL_STAGE = "model.stage_changed"
    MODEL_ROLLBACK = "model.rolled_back"
    MODEL_ROLLOUT = "model.rollout"
    APPROVAL = "model.approved"
    PEER_HEAD = "audit.peer_head"
    HEAD_EXCHANGE_FAILED = "audit.head_exchange_failed"
    RETENTION = "audit.retention"
    ALERT = "monitor.alert"


# Report sections (``vfl audit export``): which events belong to which.
CATEGORIES: Mapping[str, frozenset[str]] = {
    "lineage": frozenset(
        {
            EventKind.JOB_STARTED,
            EventKind.JOB_FINISHED,
            EventKind.DATA_FINGERPRINT,
            EventKind.HYPERPARAMETERS,
            EventKind.ROUND_METRICS,
            EventKind.CONTRIBUTION,
            EventKind.MODEL_REGISTERED,
            EventKind.MODEL_STAGE,
            EventKind.MODEL_ROLLBACK,
            EventKind.MODEL_ROLLOUT,
            EventKind.APPROVAL,
        }
    ),
    "privacy": frozenset(
        {EventKind.CRYPTO, EventKind.DP_PARAMETERS, EventKind.EPSILON_SPENT, EventKind.PSI_RESULT}
    ),
    "integrity": frozenset(
        {
            EventKind.PARTICIPANTS,
            EventKind.PEER_HEAD,
            EventKind.HEAD_EXCHANGE_FAILED,
            EventKind.RETENTION,
            EventKind.ALERT,
        }
    ),
}


def category_of(event: str) -> str:
    """The report section of an event name (``other`` for events no section lists)."""
    for name, events in CATEGORIES.items():
        if event in events:
            return name
    return "other"


def record_job_started(
    log: AuditLog,
    *,
    job_id: str,
    job_type: str,
    actor: str,
    digest: str | None = None,
    code_version: str | None = None,
) -> AuditRecord:
    """``digest``: SHA-256 of the parsed job file; ``code_version``: the engine that ran it."""
    details: dict[str, Any] = {"job_id": job_id, "job_type": job_type}
    if digest is not None:
        details["digest"] = digest
    if code_version is not None:
        details["code_version"] = code_version
    return log.append(EventKind.JOB_STARTED, details, actor=actor)


def record_job_finished(
    log: AuditLog,
    *,
    job_id: str,
    status: str,
    actor: str,
    metrics: Mapping[str, float] | None = None,
    error: str | None = None,
) -> AuditRecord:
    """``status``: ``ok`` or ``failed``; a failure carries its one-line ``error``."""
    details: dict[str, Any] = {"job_id": job_id, "status": status, "metrics": dict(metrics or {})}
    if error is not None:
        details["error"] = error
    return log.append(EventKind.JOB_FINISHED, details, actor=actor)


def record_data_fingerprint(
    log: AuditLog,
    *,
    job_id: str,
    dataset: str,
    sha256: str,
    rows: int,
    columns: Sequence[str],
    actor: str,
) -> AuditRecord:
    return log.append(
        EventKind.DATA_FINGERPRINT,
        {
            "job_id": job_id,
            "dataset": dataset,
            "sha256": sha256,
            "rows": rows,
            "columns": list(columns),
        },
        actor=actor,
    )


def record_psi_result(
    log: AuditLog, *, job_id: str, own_size: int, intersection_size: int, protocol: str, actor: str
) -> AuditRecord:
    return log.append(
        EventKind.PSI_RESULT,
        {
            "job_id": job_id,
            "own_size": own_size,
            "intersection_size": intersection_size,
            "protocol": protocol,
        },
        actor=actor,
    )


def record_participants(
    log: AuditLog,
    *,
    job_id: str,
    participants: Mapping[str, str],
    actor: str,
    identities: Mapping[str, Mapping[str, Any]] | None = None,
) -> AuditRecord:
    """``participants`` maps party name -> role (``label``, ``feature``, ``aggregator`` ...);
    ``identities`` party -> key / certificate fingerprints where the transport knows them."""
    details: dict[str, Any] = {"job_id": job_id, "participants": dict(participants)}
    if identities is not None:
        details["identities"] = {k: dict(v) for k, v in identities.items()}
    return log.append(EventKind.PARTICIPANTS, details, actor=actor)


def record_hyperparameters(
    log: AuditLog, *, job_id: str, hyperparameters: Mapping[str, Any], actor: str
) -> AuditRecord:
    return log.append(
        EventKind.HYPERPARAMETERS,
        {"job_id": job_id, "hyperparameters": dict(hyperparameters)},
        actor=actor,
    )


def record_crypto(
    log: AuditLog,
    *,
    job_id: str,
    scheme: str,
    key_bits: int,
    actor: str,
    purpose: str | None = None,
) -> AuditRecord:
    """The scheme and key size that actually ran; ``purpose`` says for what (``psi``, ``train``)."""
    details: dict[str, Any] = {"job_id": job_id, "scheme": scheme, "key_bits": key_bits}
    if purpose is not None:
        details["purpose"] = purpose
    return log.append(EventKind.CRYPTO, details, actor=actor)


def record_dp_parameters(
    log: AuditLog,
    *,
    job_id: str,
    noise_multiplier: float,
    max_grad_norm: float,
    target_epsilon: float | None,
    delta: float,
    actor: str,
) -> AuditRecord:
    return log.append(
        EventKind.DP_PARAMETERS,
        {
            "job_id": job_id,
            "noise_multiplier": noise_multiplier,
            "max_grad_norm": max_grad_norm,
            "target_epsilon": target_epsilon,
            "delta": delta,
        },
        actor=actor,
    )


def record_epsilon_spent(
    log: AuditLog, *, job_id: str, epsilon: float, delta: float, round: int, actor: str
) -> AuditRecord:
    return log.append(
        EventKind.EPSILON_SPENT,
        {"job_id": job_id, "epsilon": epsilon, "delta": delta, "round": round},
        actor=actor,
    )


def record_round_metrics(
    log: AuditLog,
    *,
    job_id: str,
    round: int,
    metrics: Mapping[str, float],
    actor: str,
    payload: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Per-round metrics; ``payload`` (bulky, e.g. per-party contributions) is retention-managed."""
    blob = None if payload is None else canonical_json(dict(payload))
    return log.append(
        EventKind.ROUND_METRICS,
        {"job_id": job_id, "round": round, "metrics": dict(metrics)},
        actor=actor,
        payload=blob,
    )


def record_approval(
    log: AuditLog, *, model: str, version: str, approver: str, comment: str = ""
) -> AuditRecord:
    return log.append(
        EventKind.APPROVAL,
        {"model": model, "version": version, "approver": approver, "comment": comment},
        actor=approver,
    )
