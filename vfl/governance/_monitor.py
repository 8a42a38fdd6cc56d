"""Training monitoring: per-round records, convergence, alert rules and the alerts they raise.

The math is pure functions over a round history; :class:`Monitor` only keeps the history, fires
each alert once when its condition starts to hold (again after it cleared), logs it as a warning
and writes it to the audit log (``monitor.alert``) when one is given. Rules (:class:`AlertRules`):

* plateau -- the watched metric has not improved on its best by more than ``min_delta`` in the
  last ``plateau_rounds`` rounds (default 5);
* dropouts -- more than ``max_dropout`` (default 20%) of the expected parties missed the round;
* silent party -- a party missed each of the last ``silent_rounds`` rounds (default 3);
* slow round -- a round took longer than ``round_time_limit`` seconds (off by default).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vfl.governance._audit import AuditLog
from vfl.governance._errors import GovernanceError
from vfl.governance._events import EventKind

__all__ = [
    "MonitoredRound",
    "AlertKind",
    "Alert",
    "AlertRules",
    "Monitor",
    "loss_deltas",
    "rounds_since_improvement",
    "dropout_rate",
    "silent_parties",
    "evaluate_alerts",
]

_log = logging.getLogger("vfl.governance.monitor")


@dataclass(frozen=True)
class MonitoredRound:
    """What one training round measured, at one party.

    ``metrics``: model metrics (``loss``, ``auc``, ``accuracy``, ``f1`` ...); ``bytes_sent`` and
    ``latency_seconds`` per peer; ``contributions``: per-party contribution score of the round.
    """

    round: int
    metrics: Mapping[str, float]
    seconds: float
    expected: tuple[str, ...]
    responded: tuple[str, ...]
    bytes_sent: Mapping[str, int] = field(default_factory=dict)
    latency_seconds: Mapping[str, float] = field(default_factory=dict)
    encryption_seconds: float = 0.0
    contributions: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.round < 1:
            raise GovernanceError(f"round numbers start at 1, got {self.round}")
        unknown = set(self.responded) - set(self.expected)
        if unknown:
            raise GovernanceError(f"round {self.round}: {sorted(unknown)[0]} was not expected")
        if self.seconds < 0 or self.encryption_seconds < 0:
            raise GovernanceError(f"round {self.round}: negative duration")


class AlertKind(enum.StrEnum):
    PLATEAU = "plateau"
    DROPOUTS = "dropouts"
    SILENT_PARTY = "silent_party"
    SLOW_ROUND = "slow_round"


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    round: int
    message: str
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "round": self.round,
            "message": self.message,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the alert rules (module docstring)."""

    metric: str = "loss"
    higher_is_better: bool = False
    plateau_rounds: int = 5
    min_delta: float = 0.0
    max_dropout: float = 0.2
    silent_rounds: int = 3
    round_time_limit: float | None = None

    def __post_init__(self) -> None:
        if self.plateau_rounds < 1 or self.silent_rounds < 1:
            raise GovernanceError("plateau_rounds and silent_rounds must be at least 1")
        if not 0.0 <= self.max_dropout <= 1.0:
            raise GovernanceError(f"max_dropout must be in [0, 1], got {self.max_dropout}")


def loss_deltas(values: Sequence[float]) -> list[float]:
    """``[v_1 - v_0, v_2 - v_1, ...]``: the per-round change of a metric."""
    return [b - a for a, b in zip(values, values[1:], strict=False)]


def rounds_since_improvement(
    values: Sequence[float], *, higher_is_better: bool, min_delta: float = 0.0
) -> int:
    """Rounds since the metric last beat its previous best by more than ``min_delta``.

    The first value counts as an improvement; ``[1.0, 0.9, 0.95, 0.91]`` (lower is better) -> 2.
    """
    best = math.nan
    since = 0
    for value in values:
        score = value if higher_is_better else -value
        if math.isnan(best) or score > best + min_delta:
            best, since = score, 0
        else:
            since += 1
    return since


def dropout_rate(record: MonitoredRound) -> float:
    """Share of the expected parties that did not respond in the round."""
    if not record.expected:
        return 0.0
    return 1.0 - len(set(record.responded)) / len(set(record.expected))


def silent_parties(history: Sequence[MonitoredRound], *, rounds: int) -> list[str]:
    """Parties expected but absent in each of the last ``rounds`` rounds (sorted)."""
    if len(history) < rounds:
        return []
    window = history[-rounds:]
    silent = set(window[0].expected)
    for record in window:
        silent &= set(record.expected) - set(record.responded)
    return sorted(silent)


def evaluate_alerts(history: Sequence[MonitoredRound], rules: AlertRules) -> list[Alert]:
    """Every alert condition that holds after the latest round of ``history``."""
    if not history:
        return []
    last = history[-1]
    alerts = []
    values = [r.metrics[rules.metric] for r in history if rules.metric in r.metrics]
    stale = rounds_since_improvement(
        values, higher_is_better=rules.higher_is_better, min_delta=rules.min_delta
    )
    if stale >= rules.plateau_rounds:
        alerts.append(
            Alert(
                AlertKind.PLATEAU,
                last.round,
                f"{rules.metric} has not improved in {stale} rounds",
                rules.metric,
            )
        )
    rate = dropout_rate(last)
    if rate > rules.max_dropout:
        alerts.append(
            Alert(
                AlertKind.DROPOUTS,
                last.round,
                f"round {last.round}: {rate:.0%} of the parties dropped out "
                f"(limit {rules.max_dropout:.0%})",
            )
        )
    for party in silent_parties(history, rounds=rules.silent_rounds):
        alerts.append(
            Alert(
                AlertKind.SILENT_PARTY,
                last.round,
                f"party {party} has been silent for {rules.silent_rounds} rounds",
                party,
            )
        )
    if rules.round_time_limit is not None and last.seconds > rules.round_time_limit:
        alerts.append(
            Alert(
                AlertKind.SLOW_ROUND,
                last.round,
                f"round {last.round} took {last.seconds:.3g} s (limit {rules.round_time_limit:g} s)",
            )
        )
    return alerts


class Monitor:
    """Keeps one job's round history at one party and raises alerts as rounds come in."""

    def __init__(
        self,
        *,
        job_id: str,
        party: str,
        rules: AlertRules | None = None,
        audit_log: AuditLog | None = None,
    ) -> None:
        self.job_id = job_id
        self.party = party
        self.rules = rules or AlertRules()
        self.audit_log = audit_log
        self.history: list[MonitoredRound] = []
        self.alerts: list[Alert] = []
        self._active: set[tuple[AlertKind, str]] = set()

    def observe(self, record: MonitoredRound) -> list[Alert]:
        """Add a round; return the alerts that newly fire (logged and audited)."""
        if self.history and record.round <= self.history[-1].round:
            raise GovernanceError(
                f"round {record.round} does not follow round {self.history[-1].round}"
            )
        self.history.append(record)
        current = evaluate_alerts(self.history, self.rules)
        keys = {(a.kind, a.subject) for a in current}
        fresh = [a for a in current if (a.kind, a.subject) not in self._active]
        self._active = keys
        for alert in fresh:
            _log.warning("job %s: %s", self.job_id, alert.message)
            if self.audit_log is not None:
                self.audit_log.append(
                    EventKind.ALERT, {"job_id": self.job_id, **alert.to_dict()}, actor=self.party
                )
        self.alerts.extend(fresh)
        return fresh
