"""The last step of ``vfl run``: register this party's part of the trained model.

Each party keeps its own registry (``WORK_DIR/registry.db``) and registers only the model part
it holds, as a ``candidate``. So that a later coordinated promote or rollback
(:func:`vfl.governance.coordinate_change`) can name one version everywhere, the parties agree on
the version number first: each proposes its registry's next free version (the highest registered
or reserved version, minor bumped, or ``0.1.0``) on topic ``job/summary`` and all take the
highest proposal. Each party then reserves that version for this job in its registry (one
SQLite ``BEGIN IMMEDIATE`` transaction, so concurrent jobs sharing the registry are serialised)
and tells the others whether it could (``job/version/reserved/N``). If any party could not (a
concurrent job with the same model name holds it there), all release, wait a random moment and
propose again (``job/version/N``), each now above the other job's reservation: two jobs at once
get distinct versions, the same at every party. The same first message carries each party's
final metrics, so the label party's
held-out test metrics (aggregates only: AUC, accuracy, log-loss) become every party's
validation metrics, which gate promotion to production.

For hetero LR the message also carries ``contribution``: ``{"weight_norm": ||w_p||}``, the
Frobenius norm of the weight block this party holds (intercept excluded, features standardised),
so every party can log each party's share of the model (docs/governance.md, "Contribution log").
Only the norm leaves the party, never the weights.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocols.channel import Channel
from vfl.errors import VflError
from vfl.governance import GovernanceError, ModelMetadata, ModelRegistry, ModelVersion, SemVer

__all__ = [
    "SUMMARY_TOPIC",
    "next_version",
    "agree_version",
    "register_part",
    "participant_metrics",
    "validation_metrics",
]

logger = logging.getLogger("vfl.jobs")
SUMMARY_TOPIC = "job/summary"
VERSION_TOPIC = "job/version"
RESERVED_TOPIC = "job/version/reserved"
MAX_VERSION_ROUNDS = 12
_BACKOFF_SECONDS = 0.25


def next_version(registry: ModelRegistry, name: str) -> SemVer:
    """The version this registry would give the next registration of ``name``."""
    versions = [SemVer.parse(m.version) for m in registry.versions(name)]
    return max(versions).bump("minor") if versions else SemVer(0, 1, 0)


def agree_version(
    channel: Channel,
    registry: ModelRegistry,
    *,
    name: str,
    peers: Sequence[str],
    metrics: Mapping[str, float],
    job_id: str,
    timeout: float | None = None,
    contribution: Mapping[str, float] | None = None,
    rng: random.Random | None = None,
) -> tuple[str, dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``(version every party registers, {party: final metrics}, {party: contribution})``
    (module docstring); a party that sent no ``contribution`` is absent from the last.

    On return the version is reserved for ``job_id`` in ``registry`` (register it with
    ``reservation=job_id``, or :meth:`ModelRegistry.release` it)."""
    mine = registry.next_free(name)
    summary_out: dict[str, Any] = {
        "version": str(mine),
        "metrics": {k: float(v) for k, v in metrics.items()},
    }
    if contribution is not None:
        summary_out["contribution"] = {k: float(v) for k, v in contribution.items()}
    channel.broadcast(SUMMARY_TOPIC, summary_out, peers=list(peers))
    agreed = mine
    reported: dict[str, dict[str, float]] = {channel.party: dict(metrics)}
    contributed: dict[str, dict[str, float]] = {}
    if contribution is not None:
        contributed[channel.party] = {k: float(v) for k, v in contribution.items()}
    for peer in peers:
        summary = channel.recv(peer, SUMMARY_TOPIC, timeout=timeout)
        if not isinstance(summary, dict) or not isinstance(summary.get("metrics"), dict):
            raise VflError(f"{peer} sent a malformed job summary")
        try:
            theirs = SemVer.parse(str(summary.get("version")))
        except GovernanceError:
            raise VflError(f"{peer} proposed an invalid model version") from None
        agreed = max(agreed, theirs)
        reported[peer] = {
            str(k): float(v)
            for k, v in summary["metrics"].items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        theirs_contribution = summary.get("contribution")
        if theirs_contribution is not None:
            contributed[peer] = _contribution(peer, theirs_contribution)
    version = _reserve_agreed(
        channel, registry, name=name, peers=peers, job_id=job_id, agreed=agreed, timeout=timeout,
        rng=rng or random.SystemRandom(),
    )  # fmt: skip
    return version, reported, contributed


def _proposal(peer: str, value: Any) -> SemVer:
    if not isinstance(value, dict):
        raise VflError(f"{peer} sent a malformed model version proposal")
    try:
        return SemVer.parse(str(value.get("version")))
    except GovernanceError:
        raise VflError(f"{peer} proposed an invalid model version") from None


def _reserve_agreed(
    channel: Channel,
    registry: ModelRegistry,
    *,
    name: str,
    peers: Sequence[str],
    job_id: str,
    agreed: SemVer,
    timeout: float | None,
    rng: random.Random,
) -> str:
    """Reserve ``agreed`` at every party, re-proposing until all could (module docstring)."""
    for attempt in range(MAX_VERSION_ROUNDS):
        if attempt:
            registry.release(name, job_id=job_id)
            # A random pause, growing with the attempt, so two jobs that keep colliding at
            # different parties stop doing so in step.
            time.sleep(rng.uniform(0.0, _BACKOFF_SECONDS * attempt))
            mine = registry.next_free(name)
            channel.broadcast(
                f"{VERSION_TOPIC}/{attempt}", {"version": str(mine)}, peers=list(peers)
            )
            agreed = mine
            for peer in peers:
                value = channel.recv(peer, f"{VERSION_TOPIC}/{attempt}", timeout=timeout)
                agreed = max(agreed, _proposal(peer, value))
        ok = registry.reserve(name, str(agreed), job_id=job_id)
        topic = f"{RESERVED_TOPIC}/{attempt}"
        channel.broadcast(topic, {"reserved": ok}, peers=list(peers))
        refused = [] if ok else [channel.party]
        for peer in peers:
            answer = channel.recv(peer, topic, timeout=timeout)
            if not isinstance(answer, dict) or not isinstance(answer.get("reserved"), bool):
                raise VflError(f"{peer} sent a malformed model version reservation")
            if not answer["reserved"]:
                refused.append(peer)
        if not refused:
            return str(agreed)
        logger.info(
            "model %s version %s is taken at %s (a concurrent job); proposing again",
            name,
            agreed,
            ", ".join(sorted(refused)),
        )
    registry.release(name, job_id=job_id)
    raise VflError(
        f"could not agree on a free version of model {name} with {', '.join(peers)} after "
        f"{MAX_VERSION_ROUNDS} attempts (concurrent jobs keep taking it); run the job again"
    )


def _contribution(peer: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise VflError(f"{peer} sent a malformed contribution in its job summary")
    out = {}
    for key, number in value.items():
        if (
            not isinstance(number, int | float)
            or isinstance(number, bool)
            or not math.isfinite(number)
            or number < 0
        ):
            raise VflError(f"{peer} sent a malformed contribution in its job summary")
        out[str(key)] = float(number)
    return out


def register_part(
    registry: ModelRegistry,
    *,
    name: str,
    version: str,
    artefact: Path,
    metadata: ModelMetadata,
    actor: str,
    reservation: str | None = None,
) -> ModelVersion:
    """Register ``artefact`` as candidate ``version``; its parent is the highest version below.

    With ``reservation`` (the job id :func:`agree_version` reserved ``version`` for) the
    reservation is consumed, and released if registering fails."""
    target = SemVer.parse(version)
    below = [m for m in registry.versions(name) if SemVer.parse(m.version) < target]
    parent = below[-1].version if below else None
    try:
        model = registry.register(
            name,
            artefact=artefact,
            metadata=metadata,
            actor=actor,
            version=version,
            parent=parent,
            reservation=reservation,
        )
    except BaseException:
        if reservation is not None:
            registry.release(name, job_id=reservation)
        raise
    logger.info("registered %s %s (%s) at %s", name, model.version, model.stage, actor)
    return model


def participant_metrics(
    roles: Mapping[str, str], reported: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Metrics per participant type (``label``, ``feature`` ...): merged over that role's parties."""
    out: dict[str, dict[str, float]] = {}
    for party, values in sorted(reported.items()):
        if values:
            out.setdefault(roles.get(party, "party"), {}).update(values)
    return out


def validation_metrics(
    reported: Mapping[str, Mapping[str, float]], holder: str | None
) -> dict[str, float]:
    """The held-out ``test_*`` metrics of the party that can measure them (label or aggregator)."""
    values = reported.get(holder or "", {})
    return {k: v for k, v in values.items() if k.startswith("test_")}
