"""One normalised view of a run, whichever of its files exist.

``result.json`` wins for final values (it is the finished job's own account), then
``status.json``, then what the events say. Per-round rows come from the ``round`` events; a run
written before events existed falls back to ``result.json``'s ``history`` (one row per entry, in
order; ``bytes_sent`` there is cumulative and is turned into per-round amounts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vfl.report._rundir import RunFiles

__all__ = ["RoundRow", "RunView", "view_of", "number", "metric_names"]

# History keys that are bookkeeping, not model metrics.
_NOT_METRICS = frozenset(
    {"round", "epoch", "task", "seconds", "learning_rate", "samples_per_s", "bytes_sent"}
)


def number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (bools, strings, NaN and missing are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value)


def _metrics(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for key, raw in value.items():
        v = number(raw)
        if v is not None:
            out[str(key)] = v
    return out


@dataclass(frozen=True)
class RoundRow:
    """One finished round (epoch or FL round), 1-based."""

    round: int
    metrics: Mapping[str, float]
    seconds: float | None = None
    bytes_sent: float | None = None
    bytes_received: float | None = None
    participants: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    epsilon: float | None = None
    epsilon_round: float | None = None


@dataclass(frozen=True)
class RunView:
    """What the report shows about one party's run."""

    job_id: str
    party: str
    job_type: str
    label_party: str | None
    parties: tuple[str, ...]
    phase: str
    error: str | None
    started: float | None
    updated: float | None
    intersection_size: int | None
    input_rows: int | None
    rows: Mapping[str, int]
    crypto: Mapping[str, Any]
    timing: Mapping[str, float]
    bytes_sent: float | None
    bytes_received: float | None
    peers: Mapping[str, Mapping[str, Any]]
    metrics: Mapping[str, float]
    epsilon: float | None
    delta: float | None
    models: tuple[Mapping[str, str], ...]
    rounds: tuple[RoundRow, ...]
    privacy: Mapping[str, Any]
    alerts: tuple[Mapping[str, str], ...] = field(default=())
    skipped_lines: int = 0


def _round_rows(files: RunFiles) -> tuple[RoundRow, ...]:
    rows = []
    for event in files.events_of("round"):
        index = event.get("round")
        if isinstance(index, bool) or not isinstance(index, int):
            continue
        rows.append(
            RoundRow(
                round=index,
                metrics=_metrics(event.get("metrics")),
                seconds=number(event.get("seconds")),
                bytes_sent=number(event.get("bytes_sent")),
                bytes_received=number(event.get("bytes_received")),
                participants=_strings(event.get("participants")),
                dropped=_strings(event.get("dropped")),
                epsilon=number(event.get("epsilon")),
                epsilon_round=number(event.get("epsilon_round")),
            )
        )
    if rows:
        return tuple(sorted({r.round: r for r in rows}.values(), key=lambda r: r.round))
    history = (files.result or {}).get("history")
    if not isinstance(history, list):
        return ()
    out = []
    previous: float | None = 0.0
    for position, record in enumerate(history, start=1):
        if not isinstance(record, Mapping):
            continue
        cumulative = number(record.get("bytes_sent"))
        sent = None
        if cumulative is not None and previous is not None:
            sent = cumulative - previous
        previous = cumulative
        metrics = {k: v for k, v in _metrics(record).items() if k not in _NOT_METRICS}
        out.append(
            RoundRow(
                round=position,
                metrics=metrics,
                seconds=number(record.get("seconds")),
                bytes_sent=sent,
            )
        )
    return tuple(out)


def _timing(files: RunFiles) -> dict[str, float]:
    timing = _metrics((files.result or {}).get("timing"))
    if timing:
        return timing
    # A phase event's "seconds" is how long the phase before it took (null after "starting").
    out: dict[str, float] = {}
    previous: str | None = None
    for event in files.events_of("phase"):
        seconds = number(event.get("seconds"))
        if seconds is not None and previous is not None:
            out[previous] = out.get(previous, 0.0) + seconds
        phase = event.get("phase")
        previous = phase if isinstance(phase, str) else None
    return out


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _privacy(files: RunFiles) -> dict[str, Any]:
    privacy: dict[str, Any] = {}
    result_privacy = (files.result or {}).get("privacy")
    if isinstance(result_privacy, Mapping):
        privacy.update(result_privacy)
    for event in files.events_of("privacy"):  # the latest measurement wins
        for key in ("leak_auc_norm", "leak_auc_direction", "defence", "leak_auc_bound"):
            if key in event:
                privacy[key] = event[key]
    return privacy


def _last_epsilon(rows: Sequence[RoundRow]) -> float | None:
    values = [r.epsilon for r in rows if r.epsilon is not None]
    return values[-1] if values else None


def view_of(files: RunFiles) -> RunView:
    """Combine ``status.json``, ``result.json`` and the events into one :class:`RunView`."""
    status: Mapping[str, Any] = files.status or {}
    result: Mapping[str, Any] = files.result or {}
    psi_events = files.events_of("psi")
    psi_event: Mapping[str, Any] = psi_events[-1] if psi_events else {}
    psi_result = _mapping(result.get("psi"))
    intersection = number(
        _first(psi_result.get("intersection_size"), psi_event.get("intersection_size"))
    )
    input_rows = number(psi_event.get("input_rows"))
    phase = str(status.get("phase") or ("done" if files.result is not None else "unknown"))
    models = tuple(
        {
            "name": str(e.get("name", "")),
            "version": str(e.get("version", "")),
            "stage": str(e.get("stage", "")),
        }
        for e in files.events_of("model")
    )
    peers = _mapping(status.get("peers"))
    rounds = _round_rows(files)
    return RunView(
        job_id=str(_first(result.get("job_id"), status.get("job_id"), files.run_dir.parent.name)),
        party=str(_first(result.get("party"), status.get("party"), files.run_dir.name)),
        job_type=str(_first(result.get("type"), status.get("type"), "unknown")),
        label_party=None if status.get("label_party") is None else str(status["label_party"]),
        parties=_strings(status.get("parties")),
        phase=phase,
        error=None if status.get("error") is None else str(status["error"]),
        started=number(status.get("started")),
        updated=number(status.get("updated")),
        intersection_size=None if intersection is None else int(intersection),
        input_rows=None if input_rows is None else int(input_rows),
        rows={k: int(v) for k, v in _metrics(result.get("rows")).items()},
        crypto=dict(_mapping(result.get("crypto"))),
        timing=_timing(files),
        bytes_sent=number(_first(result.get("bytes_sent"), status.get("bytes_sent"))),
        bytes_received=number(_first(result.get("bytes_received"), status.get("bytes_received"))),
        peers={str(k): v for k, v in peers.items() if isinstance(v, Mapping)},
        metrics=_metrics(result.get("metrics")) or _metrics(status.get("metrics")),
        epsilon=number(status.get("epsilon"))
        if status.get("epsilon") is not None
        else _last_epsilon(rounds),
        delta=number(status.get("delta")),
        models=models,
        rounds=rounds,
        privacy=_privacy(files),
        alerts=tuple(
            {"alert": str(e.get("alert", "")), "message": str(e.get("message", ""))}
            for e in files.events_of("alert")
        ),
        skipped_lines=files.skipped_lines,
    )


def metric_names(rows: Sequence[RoundRow]) -> list[str]:
    """Every metric name seen in ``rows``, in first-seen order."""
    names: list[str] = []
    for row in rows:
        for name in row.metrics:
            if name not in names:
                names.append(name)
    return names
