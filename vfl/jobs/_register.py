"""The last step of ``vfl run``: register this party's part of the trained model.

Each party keeps its own registry (``WORK_DIR/registry.db``) and registers only the model part
it holds, as a ``candidate``. So that a later coordinated promote or rollback
(:func:`vfl.governance.coordinate_change`) can name one version everywhere, the parties agree on
the version number first: each proposes its registry's next version (latest minor bumped, or
``0.1.0``) on topic ``job/summary`` and all take the highest proposal, which is above every
party's latest. The same message carries each party's final metrics, so the label party's
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
    timeout: float | None = None,
    contribution: Mapping[str, float] | None = None,
) -> tuple[str, dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``(version every party registers, {party: final metrics}, {party: contribution})``
    (module docstring); a party that sent no ``contribution`` is absent from the last."""
    mine = next_version(registry, name)
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
    return str(agreed), reported, contributed


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
) -> ModelVersion:
    """Register ``artefact`` as candidate ``version``; its parent is the previous version."""
    previous = registry.versions(name)
    parent = previous[-1].version if previous else None
    model = registry.register(
        name, artefact=artefact, metadata=metadata, actor=actor, version=version, parent=parent
    )
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
