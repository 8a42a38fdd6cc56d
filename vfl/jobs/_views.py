"""JSON-ready views of a job for the audit trail and the run files: config, roles, shares.

Pure functions of the parsed job (no I/O), shared by the tracker, the round log and the finisher.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any

from vfl.jobs._kinds import kind_of
from vfl.jobs._spec import Job

__all__ = ["number", "plain", "roles", "total_rounds", "weight_shares"]


def plain(value: Any) -> Any:
    """A JSON-ready view of a config object: dataclasses to dicts, enums to values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def roles(job: Job) -> dict[str, str]:
    """party -> role in ``job`` (``label`` / ``feature`` / ``aggregator`` / ``client`` / ``psi``)."""
    kind = kind_of(job.job.type)
    out = {}
    for name in sorted(job.parties):
        if not kind.aligns:  # horizontal
            out[name] = "aggregator" if name == job.job.aggregator else "client"
        elif not kind.needs_label:
            out[name] = job.job.type
        else:
            out[name] = "label" if name == job.job.label_party else "feature"
    return out


def weight_shares(norms: Mapping[str, float]) -> dict[str, float]:
    """Each party's share of the model's squared weight norm: ``||w_p||^2 / sum_q ||w_q||^2``.

    The blocks partition the weight vector, so ``||w||^2 = sum_p ||w_p||^2`` and the shares add
    up to 1 (all 0 when every block is 0).
    """
    total = sum(float(v) ** 2 for v in norms.values())
    return {p: (float(v) ** 2 / total if total > 0 else 0.0) for p, v in sorted(norms.items())}


def total_rounds(job: Job) -> int | None:
    """Planned epochs (vertical) or rounds (fedavg), when the ``[model]`` config states them."""
    model = job.model
    for holder in (model, getattr(model, "config", None)):
        for name in ("rounds", "epochs"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def number(value: Any) -> float | None:
    """``value`` as a finite float (numpy scalars too); ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value.item()) if hasattr(value, "item") else None
        except (TypeError, ValueError):
            return None
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
